/**
 * The auth lifecycle writes through the repositories' `postgres` client, never
 * MikroORM's unit of work: `flush()` and `transactional()` run inside an
 * `AsyncLocalStorage`, whose first run on Node 20 makes every promise of the
 * process pay for async hooks from then on (bench/README.md, "Promise hooks").
 * A production-mode server in this process goes through the whole lifecycle,
 * and the promises of the process must still carry no async ids.
 */
import { executionAsyncId } from 'node:async_hooks';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { productionEnv } from './support/env.js';
import { startTestApp, type TestApp } from './support/app.js';
import { logIn, signUp } from './support/users.js';
import { connectReady } from './support/sockets.js';

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp(productionEnv({ RATE_LIMIT_PER_MINUTE: '10000' }));
});
afterAll(async () => {
  await app.close();
});

/** Whether promise reactions run with an async id of their own: they do once async hooks are on. */
const hooksOn = () => new Promise<boolean>((resolve) => setImmediate(() => void Promise.resolve().then(() => resolve(executionAsyncId() !== 0))));

it('sign-up, sign-in, refresh, a replay, a profile change and the logouts leave async hooks off', async () => {
  expect(await hooksOn()).toBe(false);

  const user = await signUp(app.url);
  const second = await logIn(app.url, user.email, user.password);
  const first = second.client.cookie;
  expect((await second.client.post('/api/v1/auth/refresh')).status).toBe(200);
  // The retired token again: once within the grace (a racing tab), then a replay that revokes the session.
  second.client.cookie = first;
  expect((await second.client.post('/api/v1/auth/refresh')).status).toBe(200);
  second.client.cookie = first;
  expect((await second.client.post('/api/v1/auth/refresh')).body.code).toBe('TOKEN_REVOKED');

  const tab = await connectReady(app.url, user.auth.accessToken);
  expect((await tab.call('user:update', { fullName: 'Ada Lovelace' })).user.fullName).toBe('Ada Lovelace');
  tab.close();
  const third = await logIn(app.url, user.email, user.password);
  expect((await third.client.post('/api/v1/auth/logout', undefined, { token: third.auth.accessToken })).status).toBe(204);
  expect((await user.client.post('/api/v1/auth/logout-all', undefined, { token: user.auth.accessToken })).status).toBe(204);

  expect(await hooksOn()).toBe(false);
  // The probe sees what the lifecycle avoids: one MikroORM transaction turns them on for good.
  await app.deps.orm.em.fork().transactional(async () => undefined);
  expect(await hooksOn()).toBe(true);
});
