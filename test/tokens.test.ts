/**
 * Tokens, version 1.1: the refresh grace serves one racing request (AUTH-6);
 * an access token never outlives its session's absolute expiry (AUTH-12).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import jwt from 'jsonwebtoken';
import { productionEnv } from './support/env.js';
import { startTestApp, tokenVerdict, type TestApp } from './support/app.js';
import { RestClient } from './support/http.js';
import { signUp } from './support/users.js';
import { closed, connectError, connectReady, tabTracker } from './support/sockets.js';
import { ErrorCode } from '../shared/errors.js';

const { track, closeAll } = tabTracker();
let app: TestApp;

beforeAll(async () => {
  app = await startTestApp(productionEnv({ RATE_LIMIT_PER_MINUTE: '10000' }));
});
afterAll(async () => {
  closeAll();
  await app?.close();
});

describe('AUTH-6 the grace serves one racing request', () => {
  it('[AUTH-6] after a rotation, two requests racing with the retired token: one is served by the grace, the other is a reuse that revokes the session', async () => {
    const user = await signUp(app.url);
    const retired = user.client.cookie!;
    expect((await user.client.post('/api/v1/auth/refresh')).status).toBe(200);
    const racers = [new RestClient(app.url), new RestClient(app.url)];
    for (const r of racers) r.cookie = retired;
    const replies = await Promise.all(racers.map((r) => r.post('/api/v1/auth/refresh')));
    expect(replies.map((r) => r.status).sort()).toEqual([200, 401]);
    expect(replies.find((r) => r.status === 401)!.body.code).toBe(ErrorCode.TOKEN_REVOKED);
    // The reuse revoked the whole session: the token the grace gave out is dead too.
    const served = replies.find((r) => r.status === 200)!;
    expect(await tokenVerdict(app, served.body.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    await app.logs.waitFor((r) => r.type === 'refresh_reuse_detected' && r.userId === user.auth.user.id);
  });
});

describe('AUTH-12 a token and its session', () => {
  it('[AUTH-12] an access token expires with its session: never later than the session\'s absolute expiry', async () => {
    // Sessions of 4 seconds, access tokens of 30 minutes.
    await using short = await startTestApp(productionEnv({ SESSION_MAX_DAYS: '0.00005' }));
    const user = await signUp(short.url);
    const { exp, iat } = jwt.decode(user.auth.accessToken) as { exp: number; iat: number };
    expect(exp - iat).toBeLessThanOrEqual(5);
    const tab = track(await connectReady(short.url, user.auth.accessToken));
    expect(new Date(tab.ready.tokenExpiresAt).getTime()).toBeLessThanOrEqual(exp * 1000);
    const expired = tab.waitFor('auth:expired', () => true, 8_000);
    await expired;
    await closed(tab, 2_000);
    expect(await tokenVerdict(short, user.auth.accessToken)).toBe(ErrorCode.TOKEN_EXPIRED);
    expect(await connectError(short.url, user.auth.accessToken)).toBe(ErrorCode.TOKEN_EXPIRED);
  });
});
