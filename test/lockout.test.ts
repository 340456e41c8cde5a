/**
 * AUTH-4 (1.1): the lockout is atomic across nodes, every other check of the
 * password counts toward it (`user:delete`), and the hashing line is bounded:
 * past it a password check is refused with 429 at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { productionEnv, randomSecret, uniqueEmail, uniquePrefix } from './support/env.js';
import { startCluster, startTestApp, type Cluster, type TestApp } from './support/app.js';
import { RestClient, type Reply } from './support/http.js';
import { signUp } from './support/users.js';
import { connectReady, tabTracker } from './support/sockets.js';
import { ErrorCode } from '../shared/errors.js';
import os from 'node:os';

let cluster: Cluster;
const { track, closeAll } = tabTracker();
const a = (): TestApp => cluster.nodes[0]!;
const b = (): TestApp => cluster.nodes[1]!;

beforeAll(async () => {
  cluster = await startCluster(2, productionEnv({ REDIS_PREFIX: uniquePrefix(), SECRET_KEY: randomSecret(), RATE_LIMIT_PER_MINUTE: '100000' }));
});
afterAll(async () => {
  closeAll();
  await cluster?.close();
});

const login = (url: string, email: string, password: string) => new RestClient(url).post('/api/v1/auth/login', { email, password });
const count = (replies: Reply[], status: number) => replies.filter((r) => r.status === status).length;

describe('AUTH-4 an atomic lockout', () => {
  it('[AUTH-4] 30 wrong logins at once over two nodes: at most LOGIN_MAX_FAILURES answer 401, the rest 423; the right password after them is 423', async () => {
    const user = await signUp(a().url);
    const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => login(i % 2 ? b().url : a().url, user.email, `Wrong-password-${i}!`)));
    expect(count(replies, 401)).toBeLessThanOrEqual(5);
    expect(count(replies, 401)).toBeGreaterThanOrEqual(1);
    expect(count(replies, 401) + count(replies, 423)).toBe(30);
    for (const r of replies.filter((r) => r.status === 423)) {
      expect(r.body.code).toBe(ErrorCode.ACCOUNT_LOCKED);
      expect(r.body.retryAfterMs).toBeGreaterThan(0);
    }
    const right = await login(b().url, user.email, user.password);
    expect(right.status).toBe(423);
    expect(right.body.code).toBe(ErrorCode.ACCOUNT_LOCKED);
  });

  it('[AUTH-4] a right password racing 30 wrong ones is either the one that gets in (resetting the count) or refused 423, never a 401 beyond the limit', async () => {
    const user = await signUp(a().url);
    const wrong = Array.from({ length: 30 }, (_, i) => login(i % 2 ? b().url : a().url, user.email, `Wrong-password-${i}!`));
    const right = login(a().url, user.email, user.password);
    const replies = await Promise.all([...wrong, right]);
    const rightReply = replies.at(-1)!;
    expect([200, 423]).toContain(rightReply.status);
    expect(count(replies.slice(0, -1), 401)).toBeLessThanOrEqual(5 + (rightReply.status === 200 ? 5 : 0));
  });

  it('[AUTH-4] wrong passwords given to user:delete count toward the email\'s lockout: then user:delete and login answer ACCOUNT_LOCKED', async () => {
    const user = await signUp(a().url);
    const tab = track(await connectReady(b().url, user.auth.accessToken));
    for (let i = 0; i < 5; i++) {
      const res = await tab.request('user:delete', { password: `Wrong-password-${i}!` });
      expect(res, `attempt ${i + 1}`).toMatchObject({ ok: false, error: { code: ErrorCode.INVALID_CREDENTIALS } });
    }
    const locked = await tab.request('user:delete', { password: user.password });
    expect(locked).toMatchObject({ ok: false, error: { code: ErrorCode.ACCOUNT_LOCKED } });
    expect(locked.ok ? 0 : locked.error.retryAfterMs).toBeGreaterThan(29 * 60_000);
    const res = await login(a().url, user.email, user.password);
    expect(res.status).toBe(423);
    // Nothing was deleted.
    expect(await a().deps.orm.em.getConnection().execute('select 1 from users where id = ?', [user.auth.user.id])).toHaveLength(1);
  });
});

describe('AUTH-4 the hashing line is bounded', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp(productionEnv({ RATE_LIMIT_PER_MINUTE: '100000' }));
  });
  afterAll(async () => {
    await app?.close();
  });

  it('[AUTH-4] a burst of password checks beyond the hashing line is refused with 429 RATE_LIMITED at once, not queued for seconds', async () => {
    // The line holds 32 per hashing slot (cores − 1): a burst well past it.
    const slots = Math.max(1, os.availableParallelism() - 1);
    const burst = 40 * slots + 80;
    const replies = await Promise.all(Array.from({ length: burst }, async () => ({ reply: await login(app.url, uniqueEmail('burst'), 'Wrong-password-1!') })));
    const shed = replies.filter(({ reply }) => reply.status === 429);
    expect(shed.length).toBeGreaterThanOrEqual(30);
    for (const { reply } of shed) {
      expect(reply.body.code).toBe(ErrorCode.RATE_LIMITED);
      expect(Number(reply.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    // The rest were checked as usual.
    expect(replies.filter(({ reply }) => reply.status === 401).length).toBeGreaterThanOrEqual(32 * slots);
    expect(replies.every(({ reply }) => reply.status === 401 || reply.status === 429)).toBe(true);
    // A shed attempt is not a failure of its email: it can log in at once after.
    const user = await signUp(app.url);
    expect((await login(app.url, user.email, user.password)).status).toBe(200);
  }, 60_000);
});
