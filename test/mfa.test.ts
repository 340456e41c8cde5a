/**
 * AUTH-13, AUTH-14: two-factor sign-in with TOTP, in production mode on two
 * nodes (real PostgreSQL and Redis). Codes come from the `otpauth` library
 * with the secret `mfa:setup` returned, as an authenticator app makes them.
 */
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { productionEnv, randomSecret, uniquePrefix, serverEnvBase } from './support/env.js';
import { startTestApp, useTwoNodes, type TestApp } from './support/app.js';
import { RestClient } from './support/http.js';
import { logIn, signUp, type SignedUp } from './support/users.js';
import { closedWithin, connectReady, type Tab } from './support/sockets.js';
import { codeAt, freshCode, stepAt } from './support/totp.js';
import { loadConfig, ConfigError } from '../server/config.js';
import { ErrorCode } from '../shared/errors.js';

const nodes = useTwoNodes(() => productionEnv({ REDIS_PREFIX: uniquePrefix(), SECRET_KEY: randomSecret(), RATE_LIMIT_PER_MINUTE: '100000' }));
const { track } = nodes;
const a = (): TestApp => nodes.a;
const b = (): TestApp => nodes.b;

const post = (url: string, path: string, body: unknown) => new RestClient(url).post(`/api/v1/auth${path}`, body);

interface Enrolled {
  user: SignedUp;
  tab: Tab;
  secret: string;
  recoveryCodes: string[];
  /** the TOTP step the enabling code used */
  step: number;
}

/** A new user with two-factor on, enrolled over a socket on node A. */
async function enrolled(): Promise<Enrolled> {
  const user = await signUp(a().url);
  const tab = track(await connectReady(a().url, user.auth.accessToken));
  const { secret } = await tab.call('mfa:setup', {});
  const { code, step } = await freshCode(secret);
  const { recoveryCodes } = await tab.call('mfa:enable', { password: user.password, code });
  return { user, tab, secret, recoveryCodes, step };
}

/** `/login` with the right password of an account with two-factor on: the challenge. */
async function challengeOf(url: string, user: SignedUp): Promise<string> {
  const res = await post(url, '/login', { email: user.email, password: user.password });
  expect(res.status).toBe(401);
  expect(res.body.code).toBe(ErrorCode.MFA_REQUIRED);
  return res.body.details.challenge as string;
}

describe('AUTH-14 enrolment', () => {
  it('[AUTH-14] mfa:setup gives a secret and its otpauth URI; a new setup replaces the pending one; enabling needs the password and a code of the new secret', async () => {
    const user = await signUp(a().url);
    const tab = track(await connectReady(a().url, user.auth.accessToken));
    const first = await tab.call('mfa:setup', {});
    expect(first.secret).toMatch(/^[A-Z2-7]{32}$/);
    const uri = new URL(first.otpauthUrl);
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(uri.searchParams.get('secret')).toBe(first.secret);
    expect(uri.searchParams.get('algorithm')).toBe('SHA1');
    expect(uri.searchParams.get('digits')).toBe('6');
    expect(uri.searchParams.get('period')).toBe('30');
    expect(decodeURIComponent(uri.pathname)).toContain(user.email);

    const second = await tab.call('mfa:setup', {});
    expect(second.secret).not.toBe(first.secret);
    // A code of the replaced secret does not enable it.
    const stale = await tab.request('mfa:enable', { password: user.password, code: codeAt(first.secret, stepAt()) });
    expect(stale).toMatchObject({ ok: false, error: { code: ErrorCode.INVALID_CREDENTIALS } });
    const { code } = await freshCode(second.secret);
    const wrongPassword = await tab.request('mfa:enable', { password: `${user.password}x`, code });
    expect(wrongPassword).toMatchObject({ ok: false, error: { code: ErrorCode.INVALID_CREDENTIALS } });
    expect((await tab.call('user:me', {})).user.mfaEnabled).toBe(false);

    const { recoveryCodes } = await tab.call('mfa:enable', { password: user.password, code });
    expect(recoveryCodes).toHaveLength(10);
    expect(new Set(recoveryCodes).size).toBe(10);
    for (const c of recoveryCodes) expect(c).toMatch(/^[a-z2-9]{5}-[a-z2-9]{5}$/);
    expect((await tab.call('user:me', {})).user.mfaEnabled).toBe(true);
    // Once on, a new setup is refused (turn it off first).
    expect(await tab.request('mfa:setup', {})).toMatchObject({ ok: false, error: { code: ErrorCode.CONFLICT } });
  });

  it('[AUTH-14] the secret is stored encrypted and the recovery codes only as hashes', async () => {
    const { user, secret, recoveryCodes } = await enrolled();
    const [row] = await a().deps.sql<{ mfaSecret: string }[]>`select mfa_secret from users where id = ${user.auth.user.id}`;
    expect(row!.mfaSecret).not.toContain(secret);
    expect(row!.mfaSecret).toMatch(/^v1\./);
    const codes = await a().deps.sql<{ codeHash: string }[]>`select code_hash from recovery_codes where user_id = ${user.auth.user.id}`;
    expect(codes).toHaveLength(10);
    const stored = codes.map((c) => c.codeHash).join(' ');
    for (const c of recoveryCodes) {
      expect(stored).not.toContain(c.replace('-', ''));
      expect(stored).not.toContain(createHash('sha256').update(c.replace('-', '')).digest('hex'));
    }
  });

  it('[AUTH-14][AUTH-7] enabling signs out every other session, its live sockets on the other node included; the enabling tab stays', async () => {
    const user = await signUp(a().url);
    const other = await logIn(b().url, user.email, user.password);
    const otherTab = track(await connectReady(b().url, other.auth.accessToken));
    const tab = track(await connectReady(a().url, user.auth.accessToken));
    const { secret } = await tab.call('mfa:setup', {});
    const closing = closedWithin(otherTab.socket, 5_000);
    await tab.call('mfa:enable', { password: user.password, code: (await freshCode(secret)).code });
    await closing;
    expect(otherTab.received.find((r) => r.event === 'session:revoked')?.data).toEqual({ reason: 'mfa_changed' });
    expect((await other.client.post('/api/v1/auth/refresh')).status).toBe(401);
    expect(tab.socket.connected).toBe(true);
    expect((await tab.call('user:me', {})).user.mfaEnabled).toBe(true);
    // Every tab of the session hears it.
    expect((await tab.waitFor('user:changed')).user.mfaEnabled).toBe(true);
  });
});

describe('AUTH-13 signing in with a second factor', () => {
  it('[AUTH-13] a right password gives no token but 401 MFA_REQUIRED with a 5-minute challenge; the code (spaces allowed) finishes the login like /login', async () => {
    const { user, secret, step } = await enrolled();
    const res = await post(b().url, '/login', { email: user.email, password: user.password });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe(ErrorCode.MFA_REQUIRED);
    expect(res.body).not.toHaveProperty('accessToken');
    expect(res.setCookie).toBeUndefined();
    const { challenge, expiresAt } = res.body.details;
    expect(challenge).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    const ttl = new Date(expiresAt).getTime() - Date.now();
    expect(ttl).toBeGreaterThan(4.5 * 60_000);
    expect(ttl).toBeLessThanOrEqual(5 * 60_000 + 1_000);
    // The challenge is stored only as its hash.
    const stored = await a().deps.sql`select challenge_hash from mfa_challenges where user_id = ${user.auth.user.id}`;
    expect(JSON.stringify(stored)).not.toContain(challenge);

    const wrong = await post(b().url, '/login/mfa', { challenge, code: codeAt(secret, step - 5) });
    expect(wrong.status).toBe(401);
    expect(wrong.body.code).toBe(ErrorCode.INVALID_CREDENTIALS);
    const { code } = await freshCode(secret, step);
    const client = new RestClient(a().url);
    const done = await client.post('/api/v1/auth/login/mfa', { challenge, code: ` ${code.slice(0, 3)} ${code.slice(3)} ` });
    expect(done.status).toBe(200);
    expect(done.body.user).toMatchObject({ email: user.email, mfaEnabled: true });
    expect(typeof done.body.accessToken).toBe('string');
    expect(client.cookie).toBeDefined();
    expect(done.setCookie).toMatch(/HttpOnly/i);
    const tab = track(await connectReady(b().url, done.body.accessToken));
    expect(tab.ready.user.mfaEnabled).toBe(true);
    expect((await client.post('/api/v1/auth/refresh')).status).toBe(200);
  });

  it('[AUTH-13] a challenge is used once; a code is accepted once, even on the other node', async () => {
    const { user, secret, step } = await enrolled();
    const challenge = await challengeOf(a().url, user);
    const { code, step: used } = await freshCode(secret, step);
    expect((await post(a().url, '/login/mfa', { challenge, code })).status).toBe(200);
    const again = await post(b().url, '/login/mfa', { challenge, code });
    expect(again.status).toBe(401);
    expect(again.body.code).toBe(ErrorCode.UNAUTHENTICATED);
    // The same code with a new challenge, on the other node: a replay.
    const replay = await post(b().url, '/login/mfa', { challenge: await challengeOf(b().url, user), code });
    expect(replay.status).toBe(401);
    expect(replay.body.code).toBe(ErrorCode.INVALID_CREDENTIALS);
    // Two new challenges racing with one fresh code over both nodes: exactly one gets in.
    const [c1, c2] = [await challengeOf(a().url, user), await challengeOf(b().url, user)];
    const next = await freshCode(secret, used);
    const raced = await Promise.all([post(a().url, '/login/mfa', { challenge: c1, code: next.code }), post(b().url, '/login/mfa', { challenge: c2, code: next.code })]);
    expect(raced.map((r) => r.status).sort()).toEqual([200, 401]);
  }, 90_000);

  it('[AUTH-13] bad codes: a code that lost its leading zero and other malformed codes are VALIDATION; an unknown challenge is UNAUTHENTICATED', async () => {
    const { user } = await enrolled();
    const challenge = await challengeOf(a().url, user);
    for (const code of ['12345', '1234567', '12 34 5', '', 'abc']) {
      const res = await post(a().url, '/login/mfa', { challenge, code });
      expect(res.status, code).toBe(400);
      expect(res.body.code).toBe(ErrorCode.VALIDATION);
      expect(res.body.issues[0].path).toBe('code');
    }
    const unknown = await post(a().url, '/login/mfa', { challenge: 'x'.repeat(43), code: '123456' });
    expect(unknown.status).toBe(401);
    expect(unknown.body.code).toBe(ErrorCode.UNAUTHENTICATED);
  });

  it('[AUTH-13][AUTH-4] wrong codes count toward the email\'s lockout; a right password does not reset the count; the challenge stays usable until then', async () => {
    const { user, secret, step } = await enrolled();
    const challenge = await challengeOf(a().url, user);
    for (let i = 0; i < 3; i++) {
      const res = await post(i % 2 ? b().url : a().url, '/login/mfa', { challenge, code: codeAt(secret, step - 10 - i) });
      expect(res.status, `attempt ${i + 1}`).toBe(401);
      expect(res.body.code).toBe(ErrorCode.INVALID_CREDENTIALS);
    }
    // The right password again: a new challenge, and the failures still count.
    const second = await challengeOf(b().url, user);
    for (let i = 3; i < 5; i++) {
      const res = await post(a().url, '/login/mfa', { challenge: second, code: codeAt(secret, step - 10 - i) });
      expect(res.body.code, `attempt ${i + 1}`).toBe(ErrorCode.INVALID_CREDENTIALS);
    }
    const locked = await post(b().url, '/login/mfa', { challenge, code: (await freshCode(secret, step)).code });
    expect(locked.status).toBe(423);
    expect(locked.body.code).toBe(ErrorCode.ACCOUNT_LOCKED);
    expect((await post(a().url, '/login', { email: user.email, password: user.password })).status).toBe(423);
  });

  it('[AUTH-13] an expired challenge is UNAUTHENTICATED even with a right code (a real expiry: MFA_CHALLENGE_TTL_SECONDS, which only ENVIRONMENT=test accepts)', async () => {
    expect(() => loadConfig(productionEnv({ MFA_CHALLENGE_TTL_SECONDS: '1' }))).toThrow(ConfigError);
    expect(() => loadConfig({ ...serverEnvBase(), ENVIRONMENT: 'development', MFA_CHALLENGE_TTL_SECONDS: '1' })).toThrow(/MFA_CHALLENGE_TTL_SECONDS/);
    await using app = await startTestApp({ ...serverEnvBase(), ENVIRONMENT: 'test', MFA_CHALLENGE_TTL_SECONDS: '2', RATE_LIMIT_PER_MINUTE: '100000' });
    const user = await signUp(app.url);
    const tab = track(await connectReady(app.url, user.auth.accessToken));
    const { secret } = await tab.call('mfa:setup', {});
    const enabledWith = await freshCode(secret);
    await tab.call('mfa:enable', { password: user.password, code: enabledWith.code });
    const res = await post(app.url, '/login', { email: user.email, password: user.password });
    const { challenge, expiresAt } = res.body.details;
    expect(new Date(expiresAt).getTime() - Date.now()).toBeLessThanOrEqual(2_000);
    // Wait for the instant the server named, then a little: the expiry is the server's clock, not a guess.
    await new Promise((r) => setTimeout(r, Math.max(0, new Date(expiresAt).getTime() - Date.now()) + 300));
    const late = await post(app.url, '/login/mfa', { challenge, code: (await freshCode(secret, enabledWith.step)).code });
    expect(late.status).toBe(401);
    expect(late.body.code).toBe(ErrorCode.UNAUTHENTICATED);
  });
});

describe('AUTH-14 recovery codes, turning off', () => {
  it('[AUTH-14] a recovery code signs in once (any case, with or without its hyphen); used twice it is refused', async () => {
    const { user, recoveryCodes } = await enrolled();
    const [first] = recoveryCodes as [string];
    const ok = await post(a().url, '/login/mfa', { challenge: await challengeOf(a().url, user), code: first.toUpperCase().replace('-', ' ') });
    expect(ok.status).toBe(200);
    const again = await post(b().url, '/login/mfa', { challenge: await challengeOf(b().url, user), code: first });
    expect(again.status).toBe(401);
    expect(again.body.code).toBe(ErrorCode.INVALID_CREDENTIALS);
    expect((await post(b().url, '/login/mfa', { challenge: await challengeOf(b().url, user), code: recoveryCodes[1]! })).status).toBe(200);
  });

  it('[AUTH-14] regenerating needs the password and a current code; the old codes stop working; other sessions are signed out', async () => {
    const { user, tab, recoveryCodes, secret, step } = await enrolled();
    const other = await post(b().url, '/login/mfa', { challenge: await challengeOf(b().url, user), code: recoveryCodes[0]! });
    const otherTab = track(await connectReady(b().url, other.body.accessToken));
    expect(await tab.request('mfa:recovery-codes', { password: `${user.password}x`, code: recoveryCodes[1]! })).toMatchObject({ ok: false, error: { code: ErrorCode.INVALID_CREDENTIALS } });
    expect(await tab.request('mfa:recovery-codes', { password: user.password, code: codeAt(secret, step - 7) })).toMatchObject({ ok: false, error: { code: ErrorCode.INVALID_CREDENTIALS } });
    const closing = closedWithin(otherTab.socket, 5_000);
    const { recoveryCodes: fresh } = await tab.call('mfa:recovery-codes', { password: user.password, code: (await freshCode(secret, step)).code });
    await closing;
    expect(otherTab.received.find((r) => r.event === 'session:revoked')?.data).toEqual({ reason: 'mfa_changed' });
    expect(fresh).toHaveLength(10);
    expect(fresh.some((c) => recoveryCodes.includes(c))).toBe(false);
    const old = await post(a().url, '/login/mfa', { challenge: await challengeOf(a().url, user), code: recoveryCodes[2]! });
    expect(old.body.code).toBe(ErrorCode.INVALID_CREDENTIALS);
    expect((await post(a().url, '/login/mfa', { challenge: await challengeOf(a().url, user), code: fresh[0]! })).status).toBe(200);
  });

  it('[AUTH-14] turning off needs the password and a current code, signs out every other session, and then /login gives tokens again', async () => {
    const { user, tab, secret, step, recoveryCodes } = await enrolled();
    const other = await post(b().url, '/login/mfa', { challenge: await challengeOf(b().url, user), code: recoveryCodes[0]! });
    const otherTab = track(await connectReady(b().url, other.body.accessToken));
    expect(await tab.request('mfa:disable', { password: user.password, code: '000000' })).toMatchObject({ ok: false, error: { code: ErrorCode.INVALID_CREDENTIALS } });
    expect(await tab.request('mfa:disable', { password: 'Wrong-password-1!', code: (await freshCode(secret, step)).code })).toMatchObject({ ok: false, error: { code: ErrorCode.INVALID_CREDENTIALS } });
    const closing = closedWithin(otherTab.socket, 5_000);
    await tab.call('mfa:disable', { password: user.password, code: (await freshCode(secret, step)).code });
    await closing;
    expect(otherTab.received.find((r) => r.event === 'session:revoked')?.data).toEqual({ reason: 'mfa_changed' });
    expect((await tab.call('user:me', {})).user.mfaEnabled).toBe(false);
    expect((await tab.waitFor('user:changed', (d) => d.user.mfaEnabled === false)).user.id).toBe(user.auth.user.id);
    const login = await post(a().url, '/login', { email: user.email, password: user.password });
    expect(login.status).toBe(200);
    expect(login.body.user.mfaEnabled).toBe(false);
    const codes = await a().deps.sql`select 1 from recovery_codes where user_id = ${user.auth.user.id}`;
    expect(codes).toHaveLength(0);
  });
});
