/**
 * The metrics the operators' kit (deploy/prometheus/alerts.yml, deploy/grafana/sam.json) needs beyond §7's:
 * sign-in events, Redis (the blacklist) reachable, generations started, and label sets that start at zero.
 * One production-mode node on a Redis of the file's own, which the last test stops.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { productionEnv, randomSecret, strongPassword } from './support/env.js';
import { startTestApp, type TestApp } from './support/app.js';
import { RestClient } from './support/http.js';
import { signUp } from './support/users.js';
import { connectReady } from './support/sockets.js';
import { startOwnRedis, type OwnRedis } from './support/redis-server.js';
import { sample, scrapeMetrics } from './support/metrics.js';
import { until } from './support/until.js';
import { ErrorCode } from '../shared/errors.js';

const metricsToken = randomSecret();
let own: OwnRedis;
let app: TestApp;
const scrape = () => scrapeMetrics(app.url, metricsToken);
const authEvent = async (type: string) => sample(await scrape(), `sam_auth_events_total{type="${type}"}`);

beforeAll(async () => {
  own = await startOwnRedis();
  app = await startTestApp(productionEnv({ REDIS_URL: own.url, METRICS_TOKEN: metricsToken, LOGIN_MAX_FAILURES: '3', RATE_LIMIT_PER_MINUTE: '10000' }));
});
afterAll(async () => {
  await app?.close();
  await own?.[Symbol.asyncDispose]();
});

describe('metrics of the operators\' kit', () => {
  it('label sets from closed lists are exported at zero before anything happened', async () => {
    const text = await scrape();
    for (const series of [
      'sam_auth_events_total{type="refresh_reuse_detected"}',
      'sam_auth_events_total{type="account_locked"}',
      'sam_handshake_failures_total{reason="TOKEN_REVOKED"}',
      'sam_rate_limited_total{scope="rest"}',
      'sam_upstream_errors_total{kind="overloaded"}',
      'sam_assistant_prompt_tokens_total{source="cache_read"}',
      'sam_reminders_fired_total{late="true"}',
      'sam_socket_events_dropped_total{reason="no_ack"}',
      'sam_generations_total',
    ]) {
      expect(sample(text, series), series).toBe(0);
    }
    expect(sample(text, 'sam_redis_up')).toBe(1);
  });

  it('[AUTH-4] logins, failures and the lock are counted as the security log writes them', async () => {
    const user = await signUp(app.url);
    const login = (password: string) => new RestClient(app.url).post('/api/v1/auth/login', { email: user.email, password });
    expect((await login(user.password)).status).toBe(200);
    expect(await authEvent('login_succeeded')).toBe(1);
    for (let i = 0; i < 3; i++) expect((await login(strongPassword())).status).toBe(401);
    expect(await authEvent('login_failed')).toBe(3);
    expect(await authEvent('account_locked')).toBe(1);
    // Locked: the right password is refused too, and counts as a failure, not as another lock.
    expect((await login(user.password)).status).toBe(423);
    expect(await authEvent('login_failed')).toBe(4);
    expect(await authEvent('account_locked')).toBe(1);
    expect(await authEvent('login_succeeded')).toBe(1);
  });

  it('[AUTH-6] a retired refresh token presented after the grace window counts one refresh_reuse_detected', async () => {
    const { client } = await signUp(app.url);
    const old = client.cookie!;
    expect((await client.post('/api/v1/auth/refresh')).status).toBe(200);
    // Inside the grace window a second use is a racing tab, not a reuse.
    expect(await authEvent('refresh_reuse_detected')).toBe(0);
    await new Promise((r) => setTimeout(r, 5_300));
    const thief = new RestClient(app.url);
    thief.cookie = old;
    const replay = await thief.post('/api/v1/auth/refresh');
    expect(replay.body.code).toBe(ErrorCode.TOKEN_REVOKED);
    expect(await authEvent('refresh_reuse_detected')).toBe(1);
  }, 20_000);

  it('a chat:send counts one generation started; its failed upstream one error of its kind', async () => {
    const user = await signUp(app.url);
    const tab = await connectReady(app.url, user.auth.accessToken);
    try {
      // The production test environment points the SDK at a closed port: the generation fails to connect.
      await tab.call('chat:send', { content: 'Hello there' });
      const ended = (t: string) => sample(t, 'sam_upstream_errors_total{kind="connection"}') === 1 && sample(t, 'sam_generations_active') === 0;
      const text = await until(scrape, ended, 15_000, 'the failed generation to end');
      expect(sample(text, 'sam_generations_total')).toBe(1);
    } finally {
      tab.close();
    }
  }, 30_000);

  it('[AUTH-10] sam_redis_up is 0 while the node\'s Redis is away and 1 again once it is back', async () => {
    await own.stop();
    await until(scrape, (t) => sample(t, 'sam_redis_up') === 0, 15_000, 'sam_redis_up 0');
    await own.start();
    await until(scrape, (t) => sample(t, 'sam_redis_up') === 1, 15_000, 'sam_redis_up 1');
  }, 40_000);
});
