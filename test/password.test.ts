/**
 * AUTH-15, AUTH-16, AUTH-17: password change over the socket and password
 * reset by email, in production mode on two nodes, with a real local SMTP
 * server (`smtp-server`) that the links are read from.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { productionEnv, randomSecret, strongPassword, uniqueEmail, uniquePrefix } from './support/env.js';
import { startCluster, type Cluster, type TestApp } from './support/app.js';
import { RestClient, type Reply } from './support/http.js';
import { logIn, signUp } from './support/users.js';
import { closedWithin, connectReady, tabTracker } from './support/sockets.js';
import { resetTokenIn, startSmtp, type TestSmtp } from './support/smtp.js';
import { until } from './support/until.js';
import { ErrorCode } from '../shared/errors.js';

const APP_URL = 'https://sam.example.test';
let cluster: Cluster;
let smtp: TestSmtp;
const { track, closeAll } = tabTracker();
const a = (): TestApp => cluster.nodes[0]!;
const b = (): TestApp => cluster.nodes[1]!;

beforeAll(async () => {
  smtp = await startSmtp();
  cluster = await startCluster(
    2,
    productionEnv({ REDIS_PREFIX: uniquePrefix(), SECRET_KEY: randomSecret(), RATE_LIMIT_PER_MINUTE: '100000', SMTP_URL: smtp.url, APP_URL, MAIL_FROM: 'Sam <sam@example.test>', TRUST_PROXY: 'loopback' }),
  );
});
afterAll(async () => {
  closeAll();
  await cluster?.close();
  await smtp?.close();
});

let nextIp = 1;
/** Each call from its own client address (TRUST_PROXY trusts loopback), so the per-address limit stays out of the way. */
const fromNewIp = () => ({ 'x-forwarded-for': `198.51.${100 + Math.floor(nextIp / 250)}.${nextIp++ % 250}` });
const post = (url: string, path: string, body: unknown, headers: Record<string, string> = fromNewIp()) => new RestClient(url).post(`/api/v1/auth${path}`, body, { headers });
const login = (url: string, email: string, password: string) => post(url, '/login', { email, password });
const forgot = (url: string, email: string, headers?: Record<string, string>) => post(url, '/password/forgot', { email }, headers);
const mailsTo = (to: string) => smtp.received.filter((m) => m.to.includes(to));

/** Asks for a link and reads its token from the mail that arrives. */
async function resetToken(url: string, email: string): Promise<string> {
  const before = mailsTo(email).length;
  expect((await forgot(url, email)).status).toBe(202);
  await until(async () => mailsTo(email).length, (n) => n > before, 20_000, 'the reset mail');
  return resetTokenIn(mailsTo(email).at(-1)!, APP_URL);
}

describe('AUTH-15 password change', () => {
  it('[AUTH-15] user:password checks the current password, applies the policy, and signs out every other session (sockets on the other node included)', async () => {
    const user = await signUp(a().url);
    const other = await logIn(b().url, user.email, user.password);
    const otherTab = track(await connectReady(b().url, other.auth.accessToken));
    const tab = track(await connectReady(a().url, user.auth.accessToken));
    const next = strongPassword();
    expect(await tab.request('user:password', { currentPassword: `${user.password}x`, newPassword: next })).toMatchObject({ ok: false, error: { code: ErrorCode.INVALID_CREDENTIALS } });
    for (const weak of ['short1!A', 'alllowercase-without-digits', 'NoDigitsHere-at-all!']) {
      const res = await tab.request('user:password', { currentPassword: user.password, newPassword: weak });
      expect(res, weak).toMatchObject({ ok: false, error: { code: ErrorCode.WEAK_PASSWORD } });
    }
    expect(otherTab.socket.connected).toBe(true);
    const closing = closedWithin(otherTab.socket, 5_000);
    expect(await tab.call('user:password', { currentPassword: user.password, newPassword: next })).toEqual({});
    await closing;
    expect(otherTab.received.find((r) => r.event === 'session:revoked')?.data).toEqual({ reason: 'password_changed' });
    expect((await other.client.post('/api/v1/auth/refresh')).status).toBe(401);
    expect(tab.socket.connected).toBe(true);
    expect((await user.client.post('/api/v1/auth/refresh')).status).toBe(200);
    expect((await login(b().url, user.email, user.password)).status).toBe(401);
    expect((await login(b().url, user.email, next)).status).toBe(200);
  });

  it('[AUTH-15][AUTH-4] wrong current passwords count toward the email\'s lockout', async () => {
    const user = await signUp(a().url);
    const tab = track(await connectReady(b().url, user.auth.accessToken));
    for (let i = 0; i < 5; i++) {
      const res = await tab.request('user:password', { currentPassword: `Wrong-password-${i}!`, newPassword: strongPassword() });
      expect(res, `attempt ${i + 1}`).toMatchObject({ ok: false, error: { code: ErrorCode.INVALID_CREDENTIALS } });
    }
    expect(await tab.request('user:password', { currentPassword: user.password, newPassword: strongPassword() })).toMatchObject({ ok: false, error: { code: ErrorCode.ACCOUNT_LOCKED } });
    expect((await login(a().url, user.email, user.password)).status).toBe(423);
  });
});

describe('AUTH-16 asking for a reset link', () => {
  it('[AUTH-16] an existing email gets one link to APP_URL/reset-password#token=…, with 256 random bits, stored only as its SHA-256, valid 30 minutes, from MAIL_FROM', async () => {
    const user = await signUp(a().url);
    const res = await forgot(b().url, `  ${user.email.toUpperCase()} `);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({});
    const mail = await smtp.waitFor(user.email);
    expect(mail.from).toBe('sam@example.test');
    expect(mail.raw).toMatch(/^Subject: .*[Pp]assword/m);
    const token = resetTokenIn(mail, APP_URL);
    expect(Buffer.from(token, 'base64url').length).toBeGreaterThanOrEqual(32);
    const rows = await a().deps.sql<{ tokenHash: string; expiresAt: Date; createdAt: Date }[]>`
      select token_hash, expires_at, created_at from password_reset_tokens where user_id = ${user.auth.user.id}`;
    expect(rows).toHaveLength(1);
    expect(rows[0]!.tokenHash).toBe(createHash('sha256').update(token).digest('hex'));
    expect(Math.abs(rows[0]!.expiresAt.getTime() - rows[0]!.createdAt.getTime() - 30 * 60_000)).toBeLessThan(2_000);
    // Nothing in the outbox keeps it: the message left, and its row with it (deleted once the SMTP server said so,
    // which may be just after the test's SMTP server has the message).
    await until(async () => (await a().deps.sql`select 1 from mail_outbox where recipient = ${user.email}`).length, (n) => n === 0, 10_000, 'the outbox row gone');
  });

  it('[AUTH-16] an unknown email gets the same answer in about the same time, and no mail', async () => {
    const user = await signUp(a().url);
    const time = async (email: string) => {
      const started = performance.now();
      const res = await forgot(a().url, email);
      return { ms: performance.now() - started, res };
    };
    const known: number[] = [];
    const unknown: number[] = [];
    let knownReply: Reply | undefined;
    let unknownReply: Reply | undefined;
    // Alternating, three each (the per-email limit): known and unknown see the same load.
    for (let i = 0; i < 3; i++) {
      const k = await time(user.email);
      const u = await time(uniqueEmail('nobody'));
      known.push(k.ms);
      unknown.push(u.ms);
      knownReply = k.res;
      unknownReply = u.res;
    }
    expect(unknownReply!.status).toBe(knownReply!.status);
    expect(unknownReply!.body).toEqual(knownReply!.body);
    expect([...unknownReply!.headers.keys()].filter((h) => h !== 'date' && !h.startsWith('ratelimit')).sort()).toEqual(
      [...knownReply!.headers.keys()].filter((h) => h !== 'date' && !h.startsWith('ratelimit')).sort(),
    );
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[1]!;
    // Loosely: the answer leaves before any lookup, so neither waits on the account's work.
    expect(Math.abs(median(known) - median(unknown))).toBeLessThan(150);
    await until(async () => mailsTo(user.email).length, (n) => n === 3, 20_000, 'three mails');
  });

  it('[AUTH-16] a new link makes the older one void', async () => {
    const user = await signUp(a().url);
    const first = await resetToken(a().url, user.email);
    const second = await resetToken(b().url, user.email);
    expect(second).not.toBe(first);
    const old = await post(a().url, '/password/reset', { token: first, password: strongPassword() });
    expect(old.status).toBe(401);
    expect(old.body.code).toBe(ErrorCode.UNAUTHENTICATED);
    expect((await post(a().url, '/password/reset', { token: second, password: strongPassword() })).status).toBe(204);
  });

  it('[AUTH-16] 1,000 requests for one email from 1,000 addresses: at most 3 links an hour, the rest 429, for a known and an unknown email alike', async () => {
    const user = await signUp(a().url);
    const nobody = uniqueEmail('nobody');
    for (const email of [user.email, nobody]) {
      const replies: Reply<{ code?: string }>[] = [];
      for (let batch = 0; batch < 10; batch++) {
        replies.push(...(await Promise.all(Array.from({ length: 100 }, (_, i) => forgot(i % 2 ? b().url : a().url, email)))));
      }
      expect(replies.filter((r) => r.status === 202)).toHaveLength(3);
      const limited = replies.filter((r) => r.status === 429);
      expect(limited).toHaveLength(997);
      expect(limited[0]!.body.code).toBe(ErrorCode.RATE_LIMITED);
      expect(Number(limited[0]!.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    await until(async () => mailsTo(user.email).length, (n) => n >= 3, 20_000, 'the mails');
    await a().deps.accountSecurity.drain();
    await b().deps.accountSecurity.drain();
    expect(mailsTo(user.email)).toHaveLength(3);
    expect(mailsTo(nobody)).toHaveLength(0);
  }, 120_000);

  it('[AUTH-16] one client address is limited too, whatever the emails', async () => {
    const headers = { 'x-forwarded-for': '203.0.113.77' };
    const replies = [];
    for (let i = 0; i < 25; i++) replies.push(await forgot(a().url, uniqueEmail('spray'), headers));
    expect(replies.filter((r) => r.status === 202)).toHaveLength(20);
    expect(replies.slice(20).every((r) => r.status === 429)).toBe(true);
  });
});

describe('AUTH-17 setting a new password with the link', () => {
  it('[AUTH-17] the link sets the password, signs out every session (sockets on both nodes), clears the lockout, and works once', async () => {
    const user = await signUp(a().url);
    const other = await logIn(b().url, user.email, user.password);
    const tabs = [track(await connectReady(a().url, user.auth.accessToken)), track(await connectReady(b().url, other.auth.accessToken))];
    for (let i = 0; i < 5; i++) await login(a().url, user.email, `Wrong-password-${i}!`);
    expect((await login(a().url, user.email, user.password)).status).toBe(423);
    const token = await resetToken(b().url, user.email);

    const weak = await post(a().url, '/password/reset', { token, password: 'weak' });
    expect(weak.status).toBe(400);
    expect(weak.body.code).toBe(ErrorCode.WEAK_PASSWORD);
    const next = strongPassword();
    const closing = tabs.map((t) => closedWithin(t.socket, 5_000));
    const done = await post(a().url, '/password/reset', { token, password: next });
    expect(done.status).toBe(204);
    await Promise.all(closing);
    for (const t of tabs) expect(t.received.find((r) => r.event === 'session:revoked')?.data).toEqual({ reason: 'password_reset' });
    expect((await user.client.post('/api/v1/auth/refresh')).status).toBe(401);
    expect((await other.client.post('/api/v1/auth/refresh')).status).toBe(401);
    // The lockout is gone with the old password.
    expect((await login(b().url, user.email, user.password)).status).toBe(401);
    expect((await login(b().url, user.email, next)).status).toBe(200);
    const twice = await post(b().url, '/password/reset', { token, password: strongPassword() });
    expect(twice.status).toBe(401);
    expect(twice.body.code).toBe(ErrorCode.UNAUTHENTICATED);
    expect((await login(a().url, user.email, next)).status).toBe(200);
  });

  it('[AUTH-17][AUTH-16] a link sent before a password change no longer works; a bad token is UNAUTHENTICATED or VALIDATION', async () => {
    const user = await signUp(a().url);
    const token = await resetToken(a().url, user.email);
    const tab = track(await connectReady(a().url, user.auth.accessToken));
    await tab.call('user:password', { currentPassword: user.password, newPassword: strongPassword() });
    const late = await post(a().url, '/password/reset', { token, password: strongPassword() });
    expect(late.status).toBe(401);
    expect(late.body.code).toBe(ErrorCode.UNAUTHENTICATED);
    expect((await post(a().url, '/password/reset', { token: 'A'.repeat(43), password: strongPassword() })).body.code).toBe(ErrorCode.UNAUTHENTICATED);
    expect((await post(a().url, '/password/reset', { token: '', password: strongPassword() })).body.code).toBe(ErrorCode.VALIDATION);
    expect((await post(a().url, '/password/reset', { token: 'x'.repeat(300), password: strongPassword() })).body.code).toBe(ErrorCode.VALIDATION);
  });
});
