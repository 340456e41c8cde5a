/**
 * AUTH-8 and AUTH-10: a production-mode server on a Redis of the test's own,
 * which the test flushes, stops and restarts. PostgreSQL stays up throughout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { productionEnv, strongPassword, uniqueEmail, uniquePrefix } from './support/env.js';
import { startTestApp, tokenVerdict, type TestApp } from './support/app.js';
import { RestClient, type Reply } from './support/http.js';
import { logIn, signUp, type SignedUp } from './support/users.js';
import { startOwnRedis, type OwnRedis } from './support/redis-server.js';
import { ErrorCode } from '../shared/errors.js';
import { sidOf, until } from './support/until.js';

const codeOf = tokenVerdict;


/** Every REST reply of this file, so that "nothing answers 500" covers all of them. */
const replies: { what: string; reply: Reply }[] = [];
const track = async <T extends Reply>(what: string, pending: Promise<T>): Promise<T> => {
  const reply = await pending;
  replies.push({ what, reply });
  return reply;
};

let own: OwnRedis;
let app: TestApp;
let strict: TestApp;
let raw: Redis;
const prefix = uniquePrefix();

beforeAll(async () => {
  own = await startOwnRedis();
  [app, strict] = await Promise.all([
    startTestApp(productionEnv({ REDIS_URL: own.url, REDIS_PREFIX: prefix, RATE_LIMIT_PER_MINUTE: '10000' })),
    startTestApp(productionEnv({ REDIS_URL: own.url, RATE_LIMIT_PER_MINUTE: '3' })),
  ]);
  raw = new Redis(own.url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 200 });
  raw.on('error', () => undefined);
  await raw.connect();
});
afterAll(async () => {
  raw?.disconnect();
  await Promise.all([app?.close(), strict?.close()]);
  await own?.[Symbol.asyncDispose]();
});

describe('AUTH-8 a Redis flush does not bring a revoked token back', () => {
  it('[AUTH-8] after logout and FLUSHALL the revoked token is still TOKEN_REVOKED, a valid one accepted, and the blacklist is rebuilt', async () => {
    const revoked = await signUp(app.url);
    const valid = await logIn(app.url, revoked.email, revoked.password);
    const logout = await track('logout', revoked.client.post('/api/v1/auth/logout', undefined, { token: revoked.auth.accessToken }));
    expect(logout.status).toBe(204);
    expect(await codeOf(app, revoked.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    expect(await raw.exists(`${prefix}bl:sid:${sidOf(revoked.auth.accessToken)}`)).toBe(1);

    await own.flushAll();
    expect(await raw.exists(`${prefix}bl:ready`)).toBe(0);
    expect(await raw.exists(`${prefix}bl:sid:${sidOf(revoked.auth.accessToken)}`)).toBe(0);

    expect(await codeOf(app, revoked.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    expect(await codeOf(app, valid.auth.accessToken)).toBe('ok');
    // The check noticed the missing marker and rebuilt the blacklist from PostgreSQL.
    await until(() => raw.exists(`${prefix}bl:ready`), (n) => n === 1, 5_000, 'bl:ready marker');
    expect(await raw.exists(`${prefix}bl:sid:${sidOf(revoked.auth.accessToken)}`)).toBe(1);
    expect(await raw.ttl(`${prefix}bl:sid:${sidOf(revoked.auth.accessToken)}`)).toBeGreaterThan(30 * 60 - 60);
    expect(await raw.exists(`${prefix}bl:sid:${sidOf(valid.auth.accessToken)}`)).toBe(0);
    expect(await codeOf(app, revoked.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    expect(await codeOf(app, valid.auth.accessToken)).toBe('ok');
    // The refresh token of the revoked session is dead too.
    const refresh = await track('refresh of revoked', revoked.client.post('/api/v1/auth/refresh'));
    expect(refresh.status).toBe(401);
  });
});

describe('AUTH-10 Redis unreachable', () => {
  // Prepared while Redis is up.
  let valid: SignedUp;
  let revokedBefore: SignedUp;
  let toLogOutDuring: SignedUp;
  let lockee: SignedUp;

  beforeAll(async () => {
    valid = await signUp(app.url);
    revokedBefore = await signUp(app.url);
    toLogOutDuring = await signUp(app.url);
    lockee = await signUp(app.url);
    expect((await revokedBefore.client.post('/api/v1/auth/logout', undefined, { token: revokedBefore.auth.accessToken })).status).toBe(204);
    await own.stop();
    await until(() => new RestClient(app.url).get('/health'), (r) => r.status === 503, 5_000, 'health 503');
  });

  it('[AUTH-10] /health answers 503 degraded with redis down and database ok', async () => {
    const res = await track('health down', new RestClient(app.url).get('/health'));
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ status: 'degraded', checks: { database: 'ok', redis: 'down' } });
    expect(res.headers.get('strict-transport-security')).toContain('max-age=31536000');
  });

  it('[AUTH-10] token checks fall back to PostgreSQL: revoked refused, valid accepted, garbage still refused', async () => {
    for (let i = 0; i < 3; i++) {
      expect(await codeOf(app, revokedBefore.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
      expect(await codeOf(app, valid.auth.accessToken)).toBe('ok');
    }
    expect(await codeOf(app, 'not-a-token')).toBe(ErrorCode.UNAUTHENTICATED);
    // A protected route agrees: the revoked token cannot log out (401 TOKEN_REVOKED, not 500).
    const res = await track('logout with revoked', new RestClient(app.url).post('/api/v1/auth/logout', undefined, { token: revokedBefore.auth.accessToken }));
    expect(res.status).toBe(401);
    expect(res.body.code).toBe(ErrorCode.TOKEN_REVOKED);
  });

  it('[AUTH-10] signup, login, refresh and logout keep working (or 503 UNAVAILABLE), never 500', async () => {
    const client = new RestClient(app.url);
    const email = uniqueEmail('outage');
    const password = strongPassword();
    const signup = await track('signup', client.post('/api/v1/auth/signup', { email, password }));
    expect([201, 503]).toContain(signup.status);
    if (signup.status === 503) expect(signup.body.code).toBe(ErrorCode.UNAVAILABLE);
    else expect(await codeOf(app, signup.body.accessToken)).toBe('ok');

    const login = await track('login', new RestClient(app.url).post('/api/v1/auth/login', { email: valid.email, password: valid.password }));
    expect([200, 503]).toContain(login.status);
    if (login.status === 503) expect(login.body.code).toBe(ErrorCode.UNAVAILABLE);
    else expect(await codeOf(app, login.body.accessToken)).toBe('ok');

    const wrong = await track('wrong password', new RestClient(app.url).post('/api/v1/auth/login', { email: valid.email, password: 'Wrong-password-1!' }));
    expect(wrong.status).toBe(401);
    expect(wrong.body.code).toBe(ErrorCode.INVALID_CREDENTIALS);

    const refresh = await track('refresh', valid.client.post('/api/v1/auth/refresh'));
    expect(refresh.status).toBe(200);
    expect(await codeOf(app, refresh.body.accessToken)).toBe('ok');

    const logout = await track('logout', toLogOutDuring.client.post('/api/v1/auth/logout', undefined, { token: toLogOutDuring.auth.accessToken }));
    expect(logout.status).toBe(204);
    expect(await codeOf(app, toLogOutDuring.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    const refreshAfterLogout = await track('refresh after logout', toLogOutDuring.client.post('/api/v1/auth/refresh'));
    expect(refreshAfterLogout.status).toBe(401);
  });

  it('[AUTH-10] REST responses still carry RateLimit headers from the per-process limiter, and it still limits', async () => {
    const res = await track('404 under api', new RestClient(app.url).get('/api/v1/nothing-here'));
    expect(res.status).toBe(404);
    expect(res.headers.get('ratelimit-limit')).toBe('10000');
    expect(Number(res.headers.get('ratelimit-remaining'))).toBeGreaterThan(9_000);
    expect(Number(res.headers.get('ratelimit-reset'))).toBeGreaterThan(0);

    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await track('strict', new RestClient(strict.url).get('/api/v1/nothing-here'));
      statuses.push(r.status);
      expect(r.headers.get('ratelimit-limit')).toBe('3');
      expect(r.headers.get('ratelimit-remaining')).toBe(String(2 - i));
    }
    expect(statuses).toEqual([404, 404, 404]);
    const limited = await track('strict limited', new RestClient(strict.url).post('/api/v1/auth/login', { email: uniqueEmail(), password: 'x' }));
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe(ErrorCode.RATE_LIMITED);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('[AUTH-4] lockout still works per process while Redis is down', async () => {
    const fail = () => track('lockout failure', new RestClient(app.url).post('/api/v1/auth/login', { email: lockee.email, password: 'Wrong-password-1!' }));
    for (let i = 0; i < 5; i++) expect((await fail()).status, `failure ${i + 1}`).toBe(401);
    const locked = await track('locked', new RestClient(app.url).post('/api/v1/auth/login', { email: lockee.email, password: lockee.password }));
    expect(locked.status).toBe(423);
    expect(locked.body.code).toBe(ErrorCode.ACCOUNT_LOCKED);
    expect(locked.body.retryAfterMs).toBeGreaterThan(29 * 60_000);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('[AUTH-10] the security log says blacklist_unavailable', async () => {
    const record = await app.logs.waitFor((r) => r.event === 'security' && r.type === 'blacklist_unavailable', 2_000);
    expect(record.level).toBe('warn');
    expect(strict.logs.records().some((r) => r.type === 'blacklist_unavailable')).toBe(true);
  });

  it('[AUTH-10] when Redis returns: /health is ok again, and tokens revoked before and during the outage stay refused, also after a flush', async () => {
    await own.start();
    const health = await until(() => new RestClient(app.url).get('/health'), (r) => r.status === 200, 8_000, 'health 200');
    replies.push({ what: 'health back', reply: health });
    expect(health.body).toEqual({ status: 'ok', checks: { database: 'ok', redis: 'ok' } });

    // The restarted Redis is empty: no marker, no blacklist entries.
    for (const pass of ['after restart', 'after flush']) {
      expect(await codeOf(app, toLogOutDuring.auth.accessToken), pass).toBe(ErrorCode.TOKEN_REVOKED);
      expect(await codeOf(app, revokedBefore.auth.accessToken), pass).toBe(ErrorCode.TOKEN_REVOKED);
      expect(await codeOf(app, valid.auth.accessToken), pass).toBe('ok');
      await until(() => raw.exists(`${prefix}bl:ready`), (n) => n === 1, 5_000, `bl:ready ${pass}`);
      // The rebuilt blacklist holds the session logged out while Redis was away.
      expect(await raw.exists(`${prefix}bl:sid:${sidOf(toLogOutDuring.auth.accessToken)}`), pass).toBe(1);
      expect(await codeOf(app, toLogOutDuring.auth.accessToken), pass).toBe(ErrorCode.TOKEN_REVOKED);
      if (pass === 'after restart') await own.flushAll();
    }

    // Rate limits are shared through Redis again.
    const res = await track('api after restart', new RestClient(app.url).get('/api/v1/nothing-here'));
    expect(res.headers.get('ratelimit-limit')).toBe('10000');
    expect(await raw.exists(`${prefix}rl:rest:127.0.0.1`)).toBe(1);
  });

  it('[AUTH-10] nothing answered 500 in any of this, and no response held a stack trace', () => {
    expect(replies.length).toBeGreaterThan(20);
    for (const { what, reply } of replies) {
      expect(reply.status, `${what}: ${JSON.stringify(reply.body)}`).not.toBe(500);
      expect(JSON.stringify(reply.body ?? '')).not.toContain('    at ');
    }
    for (const node of [app, strict]) expect(node.logs.records().filter((r) => r.msg === 'unhandled error')).toEqual([]);
  });
});
