/**
 * PROTOCOL §4 (security headers, CORS, body limit) and §1 (error shape, bad
 * input, GEN-1) on a production-mode server.
 */
import http from 'node:http';
import { Writable } from 'node:stream';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { productionEnv, strongPassword, uniqueEmail } from './support/env.js';
import { startTestApp, type TestApp } from './support/app.js';
import { signUp } from './support/users.js';
import { errorHandler } from '../server/http/errors.js';
import { createLogger } from '../server/logger.js';
import { ErrorCode } from '../shared/errors.js';
import { limits } from '../shared/limits.js';

interface RawReply {
  base: string;
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

/** Every body this file receives, checked at the end for GEN-1. */
const seen: RawReply[] = [];

/** A request with full control of method, headers and the exact body bytes (no fetch rules in the way). */
function raw(base: string, method: string, path: string, options: { headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : Buffer.isBuffer(options.body) ? options.body : Buffer.from(options.body, 'utf8');
    const headers: Record<string, string> = { ...options.headers };
    if (body !== undefined) {
      headers['content-type'] ??= 'application/json';
      headers['content-length'] = String(body.length);
    }
    const req = http.request(`${base}${path}`, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          /* keep the text */
        }
        const reply = { base, status: res.statusCode ?? 0, headers: res.headers, text, body: parsed };
        seen.push(reply);
        resolve(reply);
      });
    });
    // The server may answer 413 and close before the whole body is written.
    req.on('error', reject);
    req.end(body);
  });
}

const json = (value: unknown) => JSON.stringify(value);

/** `{"email":…,"password":…,"pad":"xxx…"}` of exactly `bytes` bytes. */
function bodyOfSize(bytes: number): string {
  const head = `{"email":"someone@example.test","password":"x","pad":"`;
  const tail = `"}`;
  const body = head + 'x'.repeat(bytes - head.length - tail.length) + tail;
  expect(Buffer.byteLength(body)).toBe(bytes);
  return body;
}

function cspDirectives(header: string | undefined): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const part of (header ?? '').split(';')) {
    const [name, ...values] = part.trim().split(/\s+/);
    if (name) map.set(name.toLowerCase(), values);
  }
  return map;
}

function expectSecurityHeaders(res: RawReply, what: string, production = true) {
  const h = res.headers;
  if (production) expect(h['strict-transport-security'], what).toBe('max-age=31536000; includeSubDomains');
  else expect(h['strict-transport-security'], what).toBeUndefined();
  expect(h['x-content-type-options'], what).toBe('nosniff');
  expect(h['x-frame-options'], what).toBe('DENY');
  expect(h['x-xss-protection'], what).toBe('0');
  expect(h['x-powered-by'], what).toBeUndefined();
  const csp = cspDirectives(h['content-security-policy'] as string | undefined);
  expect(csp.get('default-src'), what).toEqual(["'self'"]);
  expect(csp.get('object-src'), what).toEqual(["'none'"]);
  expect(csp.get('base-uri'), what).toEqual(["'none'"]);
  expect(csp.get('frame-ancestors'), what).toEqual(["'none'"]);
  expect(csp.get('form-action'), what).toEqual(["'self'"]);
  expect(csp.get('img-src'), what).toEqual(["'self'"]);
  expect(csp.get('connect-src'), what).toEqual(["'self'"]);
  // Scripts fall back to default-src when script-src is absent; neither may allow inline or eval.
  for (const directive of ['script-src', 'script-src-elem', 'script-src-attr', 'default-src']) {
    for (const value of csp.get(directive) ?? []) {
      expect(value, `${what}: ${directive}`).not.toMatch(/unsafe-inline|unsafe-eval|^\*$|^https?:$|^data:$/);
    }
  }
}

const allowedOrigin = 'https://app.example.test';
const foreignOrigin = 'https://evil.example.test';
let app: TestApp;
let limited: TestApp;

beforeAll(async () => {
  [app, limited] = await Promise.all([
    startTestApp(productionEnv({ RATE_LIMIT_PER_MINUTE: '10000', CORS_ORIGINS: `${allowedOrigin},http://other-allowed.example.test:8080` })),
    startTestApp(productionEnv({ RATE_LIMIT_PER_MINUTE: '1' })),
  ]);
});
afterAll(async () => {
  await Promise.all([app?.close(), limited?.close()]);
});

describe('§4 security headers on every response', () => {
  it('[§4] /health, 404s, 400, 413, 401 and 429 all carry HSTS, nosniff, DENY, X-XSS-Protection 0 and the CSP', async () => {
    const cases: [string, Promise<RawReply>, number][] = [
      ['/health', raw(app.url, 'GET', '/health'), 200],
      ['404 under /api', raw(app.url, 'GET', '/api/v1/nothing-here'), 404],
      ['404 elsewhere', raw(app.url, 'POST', '/nowhere', { body: '{}' }), 404],
      ['404 /metrics-like path', raw(app.url, 'GET', '/definitely/not/here.php'), -1],
      ['400 VALIDATION', raw(app.url, 'POST', '/api/v1/auth/login', { body: '{}' }), 400],
      ['413', raw(app.url, 'POST', '/api/v1/auth/login', { body: bodyOfSize(limits.httpBodyBytes + 1) }), 413],
      ['401', raw(app.url, 'POST', '/api/v1/auth/logout-all'), 401],
      ['preflight', raw(app.url, 'OPTIONS', '/api/v1/auth/login', { headers: { origin: allowedOrigin, 'access-control-request-method': 'POST' } }), 204],
    ];
    for (const [what, pending, status] of cases) {
      const res = await pending;
      if (status > 0) expect(res.status, what).toBe(status);
      expectSecurityHeaders(res, what);
    }
    // 429: the second request to a node allowing one per minute.
    await raw(limited.url, 'GET', '/api/v1/nothing-here');
    const tooMany = await raw(limited.url, 'GET', '/api/v1/nothing-here');
    expect(tooMany.status).toBe(429);
    expect(tooMany.body.code).toBe(ErrorCode.RATE_LIMITED);
    expectSecurityHeaders(tooMany, '429');
  });

  it('[§4] outside production there is no HSTS, but the other headers stay', async () => {
    await using dev = await startTestApp(productionEnv({ ENVIRONMENT: 'test', AUTO_MIGRATE: 'false' }));
    for (const res of [await raw(dev.url, 'GET', '/health'), await raw(dev.url, 'GET', '/api/v1/none'), await raw(dev.url, 'POST', '/api/v1/auth/login', { body: '[]' })]) {
      expectSecurityHeaders(res, `test mode ${res.status}`, false);
    }
  });
});

describe('§4 CORS answers only the exact CORS_ORIGINS', () => {
  it('[§4] an allowed origin gets itself echoed, with credentials, on preflight and on POST', async () => {
    const preflight = await raw(app.url, 'OPTIONS', '/api/v1/auth/signup', {
      headers: { origin: allowedOrigin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(preflight.status).toBeLessThan(300);
    expect(preflight.headers['access-control-allow-origin']).toBe(allowedOrigin);
    expect(preflight.headers['access-control-allow-credentials']).toBe('true');
    expect(String(preflight.headers['access-control-allow-methods'])).toContain('POST');
    expect(String(preflight.headers['access-control-allow-headers']).toLowerCase()).toContain('content-type');
    expect(String(preflight.headers.vary).toLowerCase()).toContain('origin');

    const email = uniqueEmail('cors');
    const post = await raw(app.url, 'POST', '/api/v1/auth/signup', { headers: { origin: allowedOrigin }, body: json({ email, password: strongPassword() }) });
    expect(post.status).toBe(201);
    expect(post.headers['access-control-allow-origin']).toBe(allowedOrigin);
    expect(post.headers['access-control-allow-credentials']).toBe('true');
    expect(String(post.headers['access-control-expose-headers']).toLowerCase()).toContain('ratelimit-remaining');
  });

  it('[§4] another origin gets no CORS headers; near misses of the allowed origin are foreign too', async () => {
    for (const origin of [foreignOrigin, `${allowedOrigin}.evil.test`, 'http://app.example.test', `${allowedOrigin}:444`, 'null']) {
      const preflight = await raw(app.url, 'OPTIONS', '/api/v1/auth/login', { headers: { origin, 'access-control-request-method': 'POST' } });
      expect(preflight.headers['access-control-allow-origin'], origin).toBeUndefined();
      expect(preflight.headers['access-control-allow-credentials'], origin).toBeUndefined();
      const get = await raw(app.url, 'GET', '/api/v1/nothing', { headers: { origin } });
      expect(get.headers['access-control-allow-origin'], origin).toBeUndefined();
    }
  });

  it('[§4] a POST from a foreign Origin is 403 FORBIDDEN and changes nothing', async () => {
    const email = uniqueEmail('csrf');
    const signup = await raw(app.url, 'POST', '/api/v1/auth/signup', { headers: { origin: foreignOrigin }, body: json({ email, password: strongPassword() }) });
    expect(signup.status).toBe(403);
    expect(signup.body).toMatchObject({ code: ErrorCode.FORBIDDEN });
    expect(signup.headers['set-cookie']).toBeUndefined();
    expect(signup.headers['access-control-allow-origin']).toBeUndefined();
    const rows = await app.deps.orm.em.getConnection().execute('select id from users where email = ?', [email]);
    expect(rows).toHaveLength(0);

    // A logged-in victim's session survives a cross-site logout attempt.
    const victim = await signUp(app.url);
    const logout = await raw(app.url, 'POST', '/api/v1/auth/logout', {
      headers: { origin: foreignOrigin, authorization: `Bearer ${victim.auth.accessToken}`, cookie: `refresh_token=${victim.client.cookie}` },
    });
    expect(logout.status).toBe(403);
    await expect(app.deps.auth.authenticate(victim.auth.accessToken)).resolves.toMatchObject({ sub: victim.auth.user.id });
    expect((await victim.client.post('/api/v1/auth/refresh')).status).toBe(200);

    // The server's own origin is never foreign.
    const own = await raw(app.url, 'POST', '/api/v1/auth/login', { headers: { origin: app.url }, body: json({ email, password: 'Wrong-password-1!' }) });
    expect(own.status).toBe(401);
  });
});

describe('§4 and §1 bodies', () => {
  const login = (body: string, headers: Record<string, string> = {}) => raw(app.url, 'POST', '/api/v1/auth/login', { body, headers });
  const signup = (body: string) => raw(app.url, 'POST', '/api/v1/auth/signup', { body });

  it('[§4] 102,400 bytes of JSON reach validation; 102,401 answer 413 PAYLOAD_TOO_LARGE', async () => {
    const atLimit = await login(bodyOfSize(limits.httpBodyBytes));
    expect(atLimit.status).toBe(400);
    expect(atLimit.body.code).toBe(ErrorCode.VALIDATION);
    expect(atLimit.body.issues.some((i: { message: string }) => i.message.includes('pad'))).toBe(true);

    const over = await login(bodyOfSize(limits.httpBodyBytes + 1));
    expect(over.status).toBe(413);
    expect(over.body).toEqual({ code: ErrorCode.PAYLOAD_TOO_LARGE, message: expect.any(String) });

    // Far over the limit, too, is a clean 413 (not a dropped connection or a 500).
    const huge = await login(bodyOfSize(5 * limits.httpBodyBytes));
    expect(huge.status).toBe(413);
  });

  it('[§1] malformed JSON, an array, a string, null and a number are VALIDATION', async () => {
    for (const body of ['{"email":', '{email: "a"}', "{'a':1}", '[]', '[{"email":"a@b.c","password":"x"}]', '"a string"', 'null', '42', 'true', '']) {
      const res = await login(body);
      expect(res.status, body).toBe(400);
      expect(res.body.code, body).toBe(ErrorCode.VALIDATION);
      expect(Object.keys(res.body).every((k) => ['code', 'message', 'issues', 'details'].includes(k)), body).toBe(true);
    }
  });

  it('[§1] unknown keys are VALIDATION naming the field in issues', async () => {
    const res = await login(json({ email: uniqueEmail(), password: 'x', isAdmin: true }));
    expect(res.status).toBe(400);
    expect(res.body.code).toBe(ErrorCode.VALIDATION);
    expect(Array.isArray(res.body.issues)).toBe(true);
    for (const issue of res.body.issues) {
      expect(typeof issue.path).toBe('string');
      expect(typeof issue.message).toBe('string');
    }
    expect(res.body.issues.some((i: { message: string }) => i.message.includes('isAdmin'))).toBe(true);

    const field = await signup(json({ email: uniqueEmail(), password: strongPassword(), timezone: 'Nowhere/Atlantis' }));
    expect(field.body.code).toBe(ErrorCode.VALIDATION);
    expect(field.body.issues).toEqual([{ path: 'timezone', message: expect.any(String) }]);
  });

  it('[§1] __proto__ and constructor keys are VALIDATION and pollute nothing', async () => {
    const email = uniqueEmail('proto');
    const bodies = [
      `{"email":"${email}","password":"${strongPassword()}","__proto__":{"polluted":"yes","role":"admin"}}`,
      `{"email":"${email}","password":"${strongPassword()}","constructor":{"prototype":{"polluted":"yes"}}}`,
      `{"email":"${email}","password":"${strongPassword()}","fullName":{"__proto__":{"polluted":"yes"}}}`,
      `{"__proto__":{"polluted":"yes"}}`,
    ];
    for (const body of bodies) {
      for (const send of [login, signup]) {
        const res = await send(body);
        expect(res.status, body).toBe(400);
        expect(res.body.code, body).toBe(ErrorCode.VALIDATION);
      }
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
    expect(await app.deps.orm.em.getConnection().execute('select id from users where email = ?', [email])).toHaveLength(0);
  });

  it('[§1] strings holding U+0000 are VALIDATION', async () => {
    const email = uniqueEmail('nul');
    for (const body of [
      json({ email: `a\u0000${email}`, password: strongPassword() }),
      json({ email, password: `${strongPassword()}\u0000` }),
      json({ email, password: strongPassword(), fullName: 'Ada\u0000Lovelace' }),
      json({ email, password: strongPassword(), timezone: 'UTC\u0000' }),
    ]) {
      const res = await signup(body);
      expect(res.status, body).toBe(400);
      expect(res.body.code, body).toBe(ErrorCode.VALIDATION);
    }
    expect((await login(json({ email, password: 'x\u0000' }))).body.code).toBe(ErrorCode.VALIDATION);
    expect(await app.deps.orm.em.getConnection().execute('select id from users where email = ?', [email])).toHaveLength(0);
  });

  it('[§1] an email of 10,000 characters is VALIDATION', async () => {
    const email = `${'a'.repeat(10_000 - '@example.test'.length)}@example.test`;
    expect(email).toHaveLength(10_000);
    for (const send of [login, signup]) {
      const res = await send(json({ email, password: strongPassword() }));
      expect(res.status).toBe(400);
      expect(res.body.code).toBe(ErrorCode.VALIDATION);
      expect(res.body.issues[0].path).toBe('email');
      expect(res.text).not.toContain(email);
    }
  });

  it('[§1] wrong types and integers beyond 2^53−1 are VALIDATION, never 500', async () => {
    const email = uniqueEmail('types');
    const password = strongPassword();
    const bodies = [
      `{"email":"${email}","password":"${password}","timezone":9007199254740993}`,
      `{"email":"${email}","password":"${password}","timezone":123456789012345678901234567890}`,
      `{"email":"${email}","password":"${password}","timezone":1e400}`,
      `{"email":"${email}","password":"${password}","fullName":-9007199254740993}`,
      `{"email":9007199254740993,"password":"${password}"}`,
      `{"email":"${email}","password":12345678901234567890}`,
      `{"email":["${email}"],"password":"${password}"}`,
      `{"email":{"$ne":null},"password":{"$gt":""}}`,
      `{"email":"${email}","password":null}`,
      `{"email":"${email}","password":true}`,
    ];
    for (const body of bodies) {
      for (const send of [login, signup]) {
        const res = await send(body);
        expect(res.status, body).toBe(400);
        expect(res.body.code, body).toBe(ErrorCode.VALIDATION);
      }
    }
  });

  it('[§1] a body that is not JSON, or an unsupported charset, is refused without a 500', async () => {
    const form = await raw(app.url, 'POST', '/api/v1/auth/login', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'email=a&password=b' });
    expect(form.status).toBe(400);
    expect(form.body.code).toBe(ErrorCode.VALIDATION);
    const charset = await raw(app.url, 'POST', '/api/v1/auth/login', { headers: { 'content-type': 'application/json; charset=klingon' }, body: '{}' });
    expect(charset.status).toBeGreaterThanOrEqual(400);
    expect(charset.status).toBeLessThan(500);
    const invalidUtf8 = await raw(app.url, 'POST', '/api/v1/auth/login', { body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]) });
    expect(invalidUtf8.status).toBe(400);
  });
});

describe('GEN-1 nothing secret leaves in a response', () => {
  it('[GEN-1] an unknown error answers only INTERNAL with an errorId that is in the log', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, callback) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        callback();
      },
    });
    const logger = createLogger({ level: 'info', nodeId: 'gen-1', destination });
    const tiny = express();
    tiny.get('/sync', () => {
      throw new Error('db password is hunter2 at /srv/secret/path');
    });
    tiny.get('/async', async () => {
      await Promise.resolve();
      throw Object.assign(new TypeError('Cannot read properties of undefined (reading "passwordHash")'), { hash: '$argon2id$v=19$m=19456,t=2,p=1$abc' });
    });
    tiny.use(errorHandler(logger));
    const server = http.createServer(tiny);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      for (const route of ['/sync', '/async']) {
        const res = await raw(base, 'GET', route);
        expect(res.status).toBe(500);
        expect(Object.keys(res.body).sort()).toEqual(['code', 'details', 'message']);
        expect(res.body.code).toBe(ErrorCode.INTERNAL);
        expect(typeof res.body.message).toBe('string');
        expect(Object.keys(res.body.details)).toEqual(['errorId']);
        const errorId: string = res.body.details.errorId;
        expect(errorId).toMatch(/^[0-9a-f-]{36}$/);
        for (const leak of ['hunter2', '/srv/secret', 'passwordHash', '$argon2', '    at ', 'TypeError', 'Error:']) expect(res.text, leak).not.toContain(leak);
        const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((r) => r.errorId === errorId);
        expect(logged, `log line with ${errorId}`).toBeDefined();
      }
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('[GEN-1] a full auth round trip answers no password, hash or stack trace', async () => {
    const { email, password, client, auth } = await signUp(app.url);
    await raw(app.url, 'POST', '/api/v1/auth/login', { body: json({ email, password: `${password}x` }) });
    await raw(app.url, 'POST', '/api/v1/auth/login', { body: json({ email, password }) });
    await raw(app.url, 'POST', '/api/v1/auth/signup', { body: json({ email, password }) });
    await raw(app.url, 'POST', '/api/v1/auth/signup', { body: json({ email: uniqueEmail(), password: 'weak' }) });
    await raw(app.url, 'POST', '/api/v1/auth/logout', { headers: { authorization: `Bearer ${auth.accessToken}`, cookie: `refresh_token=${client.cookie}` } });
    await raw(app.url, 'POST', '/api/v1/auth/refresh', { headers: { cookie: `refresh_token=${client.cookie}` } });
    const hash: string = (await app.deps.orm.em.getConnection().execute('select password_hash from users where email = ?', [email]))[0]!.password_hash;
    expect(seen.length).toBeGreaterThan(50);
    for (const res of seen) {
      expect(res.text).not.toContain('    at ');
      expect(res.text).not.toContain('$argon2');
      expect(res.text).not.toContain(hash);
      expect(res.text).not.toContain(password);
      // Only the tiny app of the INTERNAL test may answer 500.
      if (res.base === app.url || res.base === limited.url) expect(res.status, res.text.slice(0, 200)).not.toBe(500);
    }
    // Nothing in the production app's log was an unhandled error either.
    expect(app.logs.records().filter((r) => r.msg === 'unhandled error')).toEqual([]);
  });
});
