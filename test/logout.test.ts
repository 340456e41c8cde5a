/**
 * AUTH-7 (1.1): logout with an expired access token. `/logout` and
 * `/logout-all` accept a genuine (signature-valid) expired token together with
 * the refresh cookie of its session, and every logout answer clears the
 * cookie, so a client never believes it signed out while its cookie lives on.
 * AUTH-10: only a refusal of the refresh token clears the cookie, never a 503.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import jwt from 'jsonwebtoken';
import { productionEnv, randomSecret } from './support/env.js';
import { startTestApp, tokenVerdict, type TestApp } from './support/app.js';
import { logIn, signUp } from './support/users.js';
import { RestClient } from './support/http.js';
import { migratedDatabase, startOwnPostgres } from './support/postgres-server.js';
import { ErrorCode } from '../shared/errors.js';

/** The refresh cookie is cleared by this reply. */
const clears = (setCookie: string | undefined) => setCookie !== undefined && /^refresh_token=;/.test(setCookie) && /Expires=Thu, 01 Jan 1970/.test(setCookie);
const expire = (ms: number) => new Promise((r) => setTimeout(r, ms));

let app: TestApp;
beforeAll(async () => {
  // Access tokens of 3 seconds.
  app = await startTestApp(productionEnv({ ACCESS_TOKEN_EXPIRE_MINUTES: '0.05', RATE_LIMIT_PER_MINUTE: '10000' }));
});
afterAll(async () => {
  await app?.close();
});

describe('AUTH-7 logout with an expired access token', () => {
  it('[AUTH-7] /logout with an expired token and its session\'s cookie: 204, the cookie cleared, the session revoked', async () => {
    const user = await signUp(app.url);
    const other = await logIn(app.url, user.email, user.password);
    await expire(3_500);
    expect(await tokenVerdict(app, user.auth.accessToken)).toBe(ErrorCode.TOKEN_EXPIRED);
    const cookie = user.client.cookie;
    const res = await user.client.post('/api/v1/auth/logout', undefined, { token: user.auth.accessToken });
    expect(res.status).toBe(204);
    expect(clears(res.setCookie)).toBe(true);
    // The cookie is dead, the other session lives.
    user.client.cookie = cookie;
    expect((await user.client.post('/api/v1/auth/refresh')).status).toBe(401);
    expect((await other.client.post('/api/v1/auth/refresh')).status).toBe(200);
  });

  it('[AUTH-7] /logout-all with an expired token and the cookie ends every session of the user', async () => {
    const user = await signUp(app.url);
    const other = await logIn(app.url, user.email, user.password);
    await expire(3_500);
    const res = await user.client.post('/api/v1/auth/logout-all', undefined, { token: user.auth.accessToken });
    expect(res.status).toBe(204);
    expect(clears(res.setCookie)).toBe(true);
    expect((await other.client.post('/api/v1/auth/refresh')).status).toBe(401);
  });

  it('[AUTH-7] an expired token is refused without its own session\'s cookie, a forged one always; every answer clears the cookie', async () => {
    const user = await signUp(app.url);
    const second = await logIn(app.url, user.email, user.password);
    await expire(3_500);
    // The cookie of another session of the same user: 401, and the cookie is cleared all the same.
    const mismatched = await second.client.post('/api/v1/auth/logout', undefined, { token: user.auth.accessToken });
    expect(mismatched.status).toBe(401);
    expect(clears(mismatched.setCookie)).toBe(true);
    // No cookie at all.
    const bare = await new RestClient(app.url).post('/api/v1/auth/logout-all', undefined, { token: user.auth.accessToken });
    expect(bare.status).toBe(401);
    expect(clears(bare.setCookie)).toBe(true);
    // A token signed with another key, expired or not.
    const claims = jwt.decode(user.auth.accessToken) as Record<string, unknown>;
    const forged = jwt.sign({ ...claims }, randomSecret(), { algorithm: 'HS256' });
    const refused = await user.client.post('/api/v1/auth/logout', undefined, { token: forged });
    expect(refused.status).toBe(401);
    expect(refused.body.code).toBe(ErrorCode.UNAUTHENTICATED);
    expect(clears(refused.setCookie)).toBe(true);
    // The sessions were not touched by any of it.
    const stillAlive = await logIn(app.url, user.email, user.password);
    expect(stillAlive.auth.accessToken).toBeTruthy();
  });
});

describe('AUTH-10 a refresh that cannot be answered keeps the cookie', () => {
  it('[AUTH-10] with PostgreSQL down, /refresh answers 503 and leaves the cookie; once it is back the same cookie refreshes; a 401 clears it', async () => {
    await using pg = await startOwnPostgres();
    const databaseUrl = await migratedDatabase(pg.url('sam'));
    await using own = await startTestApp(productionEnv({ DATABASE_URL: databaseUrl }));
    const user = await signUp(own.url);
    const cookie = user.client.cookie;

    await pg.down();
    try {
      const res = await user.client.post('/api/v1/auth/refresh');
      expect(res.status).toBe(503);
      expect(res.body.code).toBe(ErrorCode.UNAVAILABLE);
      expect(res.setCookie).toBeUndefined();
      expect(user.client.cookie).toBe(cookie);
    } finally {
      await pg.up();
    }
    let back = await user.client.post('/api/v1/auth/refresh');
    for (let i = 0; i < 50 && back.status === 503; i++) {
      await expire(200);
      back = await user.client.post('/api/v1/auth/refresh');
    }
    expect(back.status).toBe(200);
    user.client.cookie = 'not-a-refresh-token';
    const refused = await user.client.post('/api/v1/auth/refresh');
    expect(refused.status).toBe(401);
    expect(clears(refused.setCookie)).toBe(true);
  }, 60_000);
});
