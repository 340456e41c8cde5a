/**
 * The REST auth lifecycle (PROTOCOL §3) against a production-mode server on the
 * real PostgreSQL and Redis.
 */
import http from 'node:http';
import { createHash, createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import jwt from 'jsonwebtoken';
import { productionEnv, randomSecret, strongPassword, uniqueEmail, uniquePrefix } from './support/env.js';
import { startTestApp, tokenVerdict, type TestApp } from './support/app.js';
import { RestClient } from './support/http.js';
import { logIn, signUp } from './support/users.js';
import { ErrorCode } from '../shared/errors.js';

const codeOf = tokenVerdict;

let app: TestApp;
const secret = randomSecret();

beforeAll(async () => {
  app = await startTestApp(productionEnv({ SECRET_KEY: secret, RATE_LIMIT_PER_MINUTE: '10000' }));
});
afterAll(async () => {
  await app.close();
});

describe('AUTH-1 passwords', () => {
  const attempt = (password: string) => new RestClient(app.url).post('/api/v1/auth/signup', { email: uniqueEmail(), password });

  it('[AUTH-1] names the first failing rule in the order length, upper, lower, digit, special', async () => {
    const cases: [string, string][] = [
      ['short1!A', 'characters long'],
      ['alllowercase123!', 'upper-case'],
      ['ALLUPPERCASE123!', 'lower-case'],
      ['NoDigitsHere!!xx', 'digit'],
      ['NoSpecials123abc', 'one of'],
      ['x', 'characters long'],
    ];
    for (const [password, fragment] of cases) {
      const res = await attempt(password);
      expect(res.status, password).toBe(400);
      expect(res.body.code).toBe(ErrorCode.WEAK_PASSWORD);
      expect(res.body.message).toContain(fragment);
    }
  });

  it('[AUTH-1] counts length in code points, and over 128 is WEAK_PASSWORD', async () => {
    // 11 astral code points + "A1!" = 14 code points but 25 UTF-16 units: accepted length-wise.
    const astral = '😀'.repeat(8) + 'aA1!';
    expect([...astral].length).toBe(12);
    const ok = await attempt(astral);
    expect(ok.status).toBe(201);
    const tooShort = '😀'.repeat(4) + 'aA1!'; // 8 code points, 12 UTF-16 units
    expect((await attempt(tooShort)).body.code).toBe(ErrorCode.WEAK_PASSWORD);
    const tooLong = 'aA1!' + 'x'.repeat(125);
    const res = await attempt(tooLong);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe(ErrorCode.WEAK_PASSWORD);
  });

  it('[AUTH-1] refuses a password from the bundled breach list', async () => {
    const res = await attempt('Nick1234-rem936');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: ErrorCode.WEAK_PASSWORD, details: { rule: 'breach' } });
  });

  it('[AUTH-1] stores the password with argon2id and never returns it', async () => {
    const { auth, password } = await signUp(app.url);
    const row = await app.deps.orm.em.getConnection().execute('select password_hash from users where id = ?', [auth.user.id]);
    const stored: string = row[0]!.password_hash;
    expect(stored).toMatch(/^\$argon2id\$v=19\$[mpt=\d,]+\$/);
    expect(/p=(\d+)/.exec(stored)![1]).toBe('1');
    const m = /m=(\d+)/.exec(stored)![1];
    const t = /t=(\d+)/.exec(stored)![1];
    expect(Number(m)).toBeGreaterThanOrEqual(19_456);
    expect(Number(t)).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(auth)).not.toContain(password);
    expect(JSON.stringify(auth)).not.toContain('$argon2');
  });
});

describe('AUTH-1 with the range API and PASSWORD_POLICY=nist', () => {
  it('[AUTH-1] only the 5-character SHA-1 prefix leaves the process, padding lines are ignored', async () => {
    const breached = strongPassword();
    const padded = strongPassword();
    const sha1 = (s: string) => createHash('sha1').update(s).digest('hex').toUpperCase();
    const seen: { url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
    const stub = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', headers: req.headers, body });
        const lines = [
          `${sha1(breached).slice(5)}:42`,
          `${sha1(padded).slice(5)}:0`,
          `${'0'.repeat(35)}:3`,
        ];
        res.writeHead(200, { 'content-type': 'text/plain' }).end(lines.join('\r\n'));
      });
    });
    await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
    const port = (stub.address() as { port: number }).port;
    await using node = await startTestApp(productionEnv({ HIBP_API_URL: `http://127.0.0.1:${port}` }));
    const signup = (password: string) => new RestClient(node.url).post('/api/v1/auth/signup', { email: uniqueEmail(), password });

    const refused = await signup(breached);
    expect(refused.status).toBe(400);
    expect(refused.body.details).toEqual({ rule: 'breach' });
    expect((await signup(padded)).status).toBe(201);

    expect(seen).toHaveLength(2);
    for (const [i, pw] of [breached, padded].entries()) {
      const req = seen[i]!;
      expect(req.url).toBe(`/range/${sha1(pw).slice(0, 5)}`);
      expect(req.headers['add-padding']).toBe('true');
      const everything = req.url + JSON.stringify(req.headers) + req.body;
      expect(everything).not.toContain(sha1(pw).slice(5));
      expect(everything).not.toContain(pw);
    }
    stub.close();
  });

  it('[AUTH-1] nist policy: 15–128 code points, no composition rules', async () => {
    await using node = await startTestApp(productionEnv({ PASSWORD_POLICY: 'nist' }));
    const signup = (password: string) => new RestClient(node.url).post('/api/v1/auth/signup', { email: uniqueEmail(), password });
    expect((await signup('onlylowercase1')).status).toBe(400);
    expect((await signup('only lowercase words here')).status).toBe(201);
    const short = await signup('Short1!Short1!');
    expect(short.body.code).toBe(ErrorCode.WEAK_PASSWORD);
    expect((await signup('nick1234-rem936')).body.details).toEqual({ rule: 'breach' });
  });
});

describe('AUTH-2 emails', () => {
  it('[AUTH-2] trims and lower-cases the email; one account per email', async () => {
    const local = `Mixed.Case-${Date.now()}`;
    const { auth, password } = await signUp(app.url, { email: `  ${local}@Example.TEST ` });
    expect(auth.user.email).toBe(`${local.toLowerCase()}@example.test`);
    const again = await new RestClient(app.url).post('/api/v1/auth/signup', { email: `${local.toUpperCase()}@EXAMPLE.test`, password: strongPassword() });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe(ErrorCode.EMAIL_TAKEN);
    const login = await logIn(app.url, ` ${local.toUpperCase()}@example.test`, password);
    expect(login.auth.user.id).toBe(auth.user.id);
  });

  it('[AUTH-2] signup returns the user shape, a token and its expiry, and sets the refresh cookie', async () => {
    const client = new RestClient(app.url);
    const res = await client.post('/api/v1/auth/signup', { email: uniqueEmail(), password: strongPassword(), fullName: 'Ada', timezone: 'Europe/Paris' });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body.user).sort()).toEqual(['createdAt', 'email', 'fullName', 'id', 'mfaEnabled', 'role', 'timezone']);
    expect(res.body.user).toMatchObject({ fullName: 'Ada', timezone: 'Europe/Paris', role: 'user' });
    expect(new Date(res.body.expiresAt).getTime()).toBeGreaterThan(Date.now());
    const cookie = res.setCookie!;
    expect(cookie).toMatch(/^refresh_token=[A-Za-z0-9_-]{43,};/);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).toContain('Path=/api/v1/auth');
    expect(cookie).toContain('Secure');
    expect(cookie).toMatch(/Max-Age=60[0-9]{4}/); // 7 days
  });

  it('[AUTH-2] an unknown time zone is VALIDATION with the field path', async () => {
    const res = await new RestClient(app.url).post('/api/v1/auth/signup', { email: uniqueEmail(), password: strongPassword(), timezone: 'Mars/Olympus' });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe(ErrorCode.VALIDATION);
    expect(res.body.issues[0].path).toBe('timezone');
  });
});

describe('AUTH-3 login failures look alike', () => {
  it('[AUTH-3] unknown email and wrong password give the same status, code and message', async () => {
    const { email } = await signUp(app.url);
    const wrong = await new RestClient(app.url).post('/api/v1/auth/login', { email, password: strongPassword() });
    const unknown = await new RestClient(app.url).post('/api/v1/auth/login', { email: uniqueEmail(), password: strongPassword() });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(unknown.body).toEqual(wrong.body);
    expect(wrong.body).toEqual({ code: ErrorCode.INVALID_CREDENTIALS, message: 'Invalid email or password' });
  });
});

describe('AUTH-4 lockout, across two nodes', () => {
  it('[AUTH-4] five failures spread over two nodes lock the email on both, even for the right password', async () => {
    const shared = { REDIS_PREFIX: uniquePrefix(), SECRET_KEY: randomSecret(), RATE_LIMIT_PER_MINUTE: '10000' };
    await using a = await startTestApp(productionEnv(shared));
    await using b = await startTestApp(productionEnv(shared));
    const { email, password } = await signUp(a.url);
    for (let i = 0; i < 5; i++) {
      const node = i % 2 === 0 ? a : b;
      const res = await new RestClient(node.url).post('/api/v1/auth/login', { email, password: 'Wrong-password-1!' });
      expect(res.status, `failure ${i + 1}`).toBe(401);
    }
    for (const node of [a, b]) {
      const res = await new RestClient(node.url).post('/api/v1/auth/login', { email, password });
      expect(res.status).toBe(423);
      expect(res.body.code).toBe(ErrorCode.ACCOUNT_LOCKED);
      expect(res.body.retryAfterMs).toBeGreaterThan(29 * 60_000);
      expect(res.body.retryAfterMs).toBeLessThanOrEqual(30 * 60_000);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(29 * 60);
    }
    expect(a.logs.records().some((r) => r.type === 'account_locked') || b.logs.records().some((r) => r.type === 'account_locked')).toBe(true);
  });

  it('[AUTH-4] unknown emails are counted alike', async () => {
    const email = uniqueEmail('ghost');
    for (let i = 0; i < 5; i++) {
      expect((await new RestClient(app.url).post('/api/v1/auth/login', { email, password: 'Wrong-password-1!' })).status).toBe(401);
    }
    expect((await new RestClient(app.url).post('/api/v1/auth/login', { email, password: 'Wrong-password-1!' })).status).toBe(423);
  });

  it('[AUTH-4] a success resets the count', async () => {
    const { email, password } = await signUp(app.url);
    const fail = () => new RestClient(app.url).post('/api/v1/auth/login', { email, password: 'Wrong-password-1!' });
    for (let i = 0; i < 4; i++) expect((await fail()).status).toBe(401);
    await logIn(app.url, email, password);
    for (let i = 0; i < 4; i++) expect((await fail()).status).toBe(401);
    await logIn(app.url, email, password);
  });
});

describe('AUTH-5 access tokens', () => {
  it('[AUTH-5] the access token is HS256 with sub, sid, jti, typ, role, iat, exp', async () => {
    const { auth } = await signUp(app.url);
    const header = JSON.parse(Buffer.from(auth.accessToken.split('.')[0]!, 'base64url').toString());
    expect(header.alg).toBe('HS256');
    const claims = jwt.decode(auth.accessToken) as Record<string, unknown>;
    expect(Object.keys(claims).sort()).toEqual(['exp', 'iat', 'jti', 'role', 'sid', 'sub', 'typ']);
    expect(claims).toMatchObject({ sub: auth.user.id, typ: 'access', role: 'user' });
    expect(claims.exp).toBe((claims.iat as number) + 30 * 60);
    expect(new Date(auth.expiresAt).getTime()).toBe((claims.exp as number) * 1000);
    expect(await codeOf(app, auth.accessToken)).toBe('ok');
  });

  it('[AUTH-5] a refresh token is not an access token, nor the other way round', async () => {
    const { client, auth } = await signUp(app.url);
    expect(await codeOf(app, client.cookie)).toBe(ErrorCode.UNAUTHENTICATED);
    const res = await client.post('/api/v1/auth/logout-all', undefined, { token: client.cookie });
    expect(res.status).toBe(401);
    const other = new RestClient(app.url);
    other.cookie = auth.accessToken;
    const refreshed = await other.post('/api/v1/auth/refresh');
    expect(refreshed.status).toBe(401);
    expect(refreshed.body.code).toBe(ErrorCode.UNAUTHENTICATED);
  });

  it('[AUTH-5] the algorithm is pinned: none, HS512 and a wrong key are refused; typ must be access', async () => {
    const { auth } = await signUp(app.url);
    const claims = jwt.decode(auth.accessToken) as Record<string, unknown>;
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
    const hs512 = jwt.sign(claims, secret, { algorithm: 'HS512', noTimestamp: true });
    const wrongKey = jwt.sign(claims, randomSecret(), { algorithm: 'HS256', noTimestamp: true });
    const refreshTyp = jwt.sign({ ...claims, typ: 'refresh' }, secret, { algorithm: 'HS256', noTimestamp: true });
    const sig = createHmac('sha256', secret).update(`${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ ...claims, role: 'admin' })}`).digest('base64url');
    const tamperedRole = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ ...claims, role: 'admin' })}.${sig.slice(0, -2)}xx`;
    for (const token of [none, hs512, wrongKey, refreshTyp, tamperedRole, 'garbage', '', 42]) {
      expect(await codeOf(app, token)).toBe(ErrorCode.UNAUTHENTICATED);
    }
    const expired = jwt.sign({ ...claims, iat: 1, exp: 2 }, secret, { algorithm: 'HS256', noTimestamp: true });
    expect(await codeOf(app, expired)).toBe(ErrorCode.TOKEN_EXPIRED);
  });

  it('[AUTH-5] ACCESS_TOKEN_EXPIRE_MINUTES=0.05 gives a 3-second token', async () => {
    await using node = await startTestApp(productionEnv({ ACCESS_TOKEN_EXPIRE_MINUTES: '0.05' }));
    const { auth } = await signUp(node.url);
    const claims = jwt.decode(auth.accessToken) as { iat: number; exp: number };
    expect(claims.exp - claims.iat).toBe(3);
  });
});

describe('AUTH-6 refresh rotation', () => {
  it('[AUTH-6] each refresh returns a new token of the same session and retires the old one', async () => {
    const { client, auth } = await signUp(app.url);
    const first = client.cookie!;
    const res = await client.post('/api/v1/auth/refresh');
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['accessToken', 'expiresAt']);
    expect(client.cookie).toBeDefined();
    expect(client.cookie).not.toBe(first);
    const before = jwt.decode(auth.accessToken) as { sid: string };
    const after = jwt.decode(res.body.accessToken) as { sid: string; jti: string };
    expect(after.sid).toBe(before.sid);
    expect(await codeOf(app, res.body.accessToken)).toBe('ok');
    const stored = await app.deps.orm.em.getConnection().execute('select token_hash, retired_at from refresh_tokens where session_id = ? order by created_at', [after.sid]);
    expect(stored).toHaveLength(2);
    expect(stored[0]!.retired_at).not.toBeNull();
    expect(stored[1]!.retired_at).toBeNull();
    // Only hashes are stored.
    expect(JSON.stringify(stored)).not.toContain(first);
  });

  it('[AUTH-6] a retired token presented after the grace window revokes the whole session', async () => {
    const { client, auth } = await signUp(app.url);
    const old = client.cookie!;
    const rotated = await client.post('/api/v1/auth/refresh');
    expect(rotated.status).toBe(200);
    await new Promise((r) => setTimeout(r, 5_300));
    const thief = new RestClient(app.url);
    thief.cookie = old;
    const replay = await thief.post('/api/v1/auth/refresh');
    expect(replay.status).toBe(401);
    expect(replay.body.code).toBe(ErrorCode.TOKEN_REVOKED);
    // The whole session is gone: its access tokens and its current refresh token.
    expect(await codeOf(app, auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    expect(await codeOf(app, rotated.body.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    const legit = await client.post('/api/v1/auth/refresh');
    expect(legit.status).toBe(401);
    expect(legit.body.code).toBe(ErrorCode.TOKEN_REVOKED);
    const record = await app.logs.waitFor((r) => r.type === 'refresh_reuse_detected' && r.userId === auth.user.id);
    expect(record.event).toBe('security');
  }, 15_000);

  it('[AUTH-6] two tabs refreshing in parallel with the same token inside the grace window both succeed', async () => {
    const { client, auth } = await signUp(app.url);
    const tabA = new RestClient(app.url);
    const tabB = new RestClient(app.url);
    tabA.cookie = client.cookie;
    tabB.cookie = client.cookie;
    const [a, b] = await Promise.all([tabA.post('/api/v1/auth/refresh'), tabB.post('/api/v1/auth/refresh')]);
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    const sid = (jwt.decode(auth.accessToken) as { sid: string }).sid;
    for (const res of [a, b]) {
      expect((jwt.decode(res.body.accessToken) as { sid: string }).sid).toBe(sid);
      expect(await codeOf(app, res.body.accessToken)).toBe('ok');
    }
    // Both new tokens keep working afterwards.
    expect((await tabA.post('/api/v1/auth/refresh')).status).toBe(200);
    expect((await tabB.post('/api/v1/auth/refresh')).status).toBe(200);
  });

  it('[AUTH-6] the session has an absolute expiry that rotation never extends', async () => {
    await using node = await startTestApp(productionEnv({ SESSION_MAX_DAYS: '0.00004' })); // ≈3.5 s
    const { client } = await signUp(node.url);
    expect((await client.post('/api/v1/auth/refresh')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1_500));
    const res = await client.post('/api/v1/auth/refresh');
    expect(res.status).toBe(200);
    expect(res.setCookie).toMatch(/Max-Age=[0-3];/);
    await new Promise((r) => setTimeout(r, 2_500));
    const late = await client.post('/api/v1/auth/refresh');
    expect(late.status).toBe(401);
    expect(late.body.code).toBe(ErrorCode.UNAUTHENTICATED);
  });

  it('[AUTH-6] refresh without a cookie, or with an unknown one, is UNAUTHENTICATED', async () => {
    const none = await new RestClient(app.url).post('/api/v1/auth/refresh');
    expect(none.status).toBe(401);
    expect(none.body.code).toBe(ErrorCode.UNAUTHENTICATED);
    const bogus = new RestClient(app.url);
    bogus.cookie = 'A'.repeat(43);
    expect((await bogus.post('/api/v1/auth/refresh')).status).toBe(401);
  });
});

describe('AUTH-7 logout', () => {
  it('[AUTH-7] logout revokes the session: access token refused, refresh token retired, cookie cleared', async () => {
    const { client, auth } = await signUp(app.url);
    const cookie = client.cookie;
    const res = await client.post('/api/v1/auth/logout', undefined, { token: auth.accessToken });
    expect(res.status).toBe(204);
    expect(res.setCookie).toMatch(/refresh_token=;/);
    expect(await codeOf(app, auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    const again = new RestClient(app.url);
    again.cookie = cookie;
    const refreshed = await again.post('/api/v1/auth/refresh');
    expect(refreshed.status).toBe(401);
    expect(refreshed.body.code).toBe(ErrorCode.TOKEN_REVOKED);
    const second = await new RestClient(app.url).post('/api/v1/auth/logout', undefined, { token: auth.accessToken });
    expect(second.status).toBe(401);
    expect(second.body.code).toBe(ErrorCode.TOKEN_REVOKED);
  });

  it('[AUTH-7] logout with no token and no cookie is 401', async () => {
    const res = await new RestClient(app.url).post('/api/v1/auth/logout');
    expect(res.status).toBe(401);
  });

  it('[AUTH-7] logout-all revokes every session of the user and no other user', async () => {
    const first = await signUp(app.url);
    const second = await logIn(app.url, first.email, first.password);
    const stranger = await signUp(app.url);
    const res = await second.client.post('/api/v1/auth/logout-all', undefined, { token: second.auth.accessToken });
    expect(res.status).toBe(204);
    expect(await codeOf(app, first.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    expect(await codeOf(app, second.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    expect((await first.client.post('/api/v1/auth/refresh')).status).toBe(401);
    expect(await codeOf(app, stranger.auth.accessToken)).toBe('ok');
    // A new login afterwards works.
    const third = await logIn(app.url, first.email, first.password);
    expect(await codeOf(app, third.auth.accessToken)).toBe('ok');
  });
});

describe('AUTH-9 rate limits', () => {
  it('[AUTH-9] every /api response carries RateLimit headers; past the limit 429 with Retry-After, across two nodes', async () => {
    const shared = { REDIS_PREFIX: uniquePrefix(), RATE_LIMIT_PER_MINUTE: '6' };
    await using a = await startTestApp(productionEnv(shared));
    await using b = await startTestApp(productionEnv(shared));
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const node = i % 2 === 0 ? a : b;
      const res = await new RestClient(node.url).post('/api/v1/auth/login', { email: uniqueEmail(), password: 'x' });
      statuses.push(res.status);
      expect(res.headers.get('ratelimit-limit')).toBe('6');
      expect(res.headers.get('ratelimit-remaining')).toBe(String(5 - i));
      expect(Number(res.headers.get('ratelimit-reset'))).toBeGreaterThan(0);
      expect(Number(res.headers.get('ratelimit-reset'))).toBeLessThanOrEqual(60);
    }
    expect(statuses.every((s) => s !== 429)).toBe(true);
    const limited = await new RestClient(b.url).get('/api/v1/nothing-here');
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe(ErrorCode.RATE_LIMITED);
    expect(limited.body.retryAfterMs).toBeGreaterThan(0);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.headers.get('ratelimit-remaining')).toBe('0');
    // Health is not counted.
    for (const node of [a, b]) expect((await new RestClient(node.url).get('/health')).status).toBe(200);
    expect(a.logs.records().some((r) => r.type === 'rate_limited') || b.logs.records().some((r) => r.type === 'rate_limited')).toBe(true);
  });

  it('[AUTH-9] X-Forwarded-For counts only from a proxy that TRUST_PROXY trusts', async () => {
    await using untrusting = await startTestApp(productionEnv({ RATE_LIMIT_PER_MINUTE: '2' }));
    const hit = (url: string, ip: string) => new RestClient(url).get('/api/v1/none', { 'x-forwarded-for': ip });
    await hit(untrusting.url, '203.0.113.1');
    await hit(untrusting.url, '203.0.113.2');
    expect((await hit(untrusting.url, '203.0.113.3')).status).toBe(429);

    await using trusting = await startTestApp(productionEnv({ RATE_LIMIT_PER_MINUTE: '2', TRUST_PROXY: 'loopback' }));
    for (const ip of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) {
      expect((await hit(trusting.url, ip)).status).toBe(404);
    }
    await hit(trusting.url, '203.0.113.9');
    expect((await hit(trusting.url, '203.0.113.9')).status).toBe(404);
    expect((await hit(trusting.url, '203.0.113.9')).status).toBe(429);
  });

  it('[AUTH-9] addresses of one IPv6 /64 share one limit; another /64 has its own', async () => {
    await using trusting = await startTestApp(productionEnv({ RATE_LIMIT_PER_MINUTE: '2', TRUST_PROXY: 'loopback' }));
    const hit = (ip: string) => new RestClient(trusting.url).get('/api/v1/none', { 'x-forwarded-for': ip });
    expect((await hit('2001:db8:1:2::a')).status).toBe(404);
    expect((await hit('2001:db8:1:2:ffff::b')).status).toBe(404);
    const third = await hit('2001:0db8:0001:0002::c');
    expect(third.status).toBe(429);
    expect(third.body.code).toBe(ErrorCode.RATE_LIMITED);
    expect((await hit('2001:db8:1:3::a')).status).toBe(404);
  });
});

describe('GEN-1 nothing secret leaves', () => {
  it('[GEN-1] no log line holds a password, a hash, a refresh token or a whole JWT', async () => {
    const { client, auth, email, password } = await signUp(app.url);
    await new RestClient(app.url).post('/api/v1/auth/login', { email, password: password + 'x' });
    const login = await logIn(app.url, email, password);
    const rotated = await client.post('/api/v1/auth/refresh');
    await login.client.post('/api/v1/auth/logout', undefined, { token: login.auth.accessToken });
    const hash = (await app.deps.orm.em.getConnection().execute('select password_hash from users where id = ?', [auth.user.id]))[0]!.password_hash;
    const secrets = [password, password + 'x', hash, client.cookie!, login.client.cookie ?? 'unused-cookie', auth.accessToken, login.auth.accessToken, rotated.body.accessToken];
    const text = app.logs.lines.join('\n');
    for (const s of secrets) expect(text).not.toContain(s);
    expect(text).not.toContain('$argon2');
    // The signature part of any JWT never appears either.
    for (const t of [auth.accessToken, login.auth.accessToken]) expect(text).not.toContain(t.split('.')[2]);
  });
});
