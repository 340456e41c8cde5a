/**
 * AUTH-18: the durable security log in PostgreSQL, append-only, kept 400
 * days; a user reads only their own entries (`security:log`), operators read
 * all of them (`admin security-log`); and §6.3b's new-device notice. In
 * production mode against the real PostgreSQL, Redis and a local SMTP server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { productionEnv, strongPassword, uniqueEmail } from './support/env.js';
import { startTestApp, type TestApp } from './support/app.js';
import { RestClient } from './support/http.js';
import { logIn, signUp, type SignedUp } from './support/users.js';
import { connectReady, tabTracker, type Tab } from './support/sockets.js';
import { resetTokenIn, startSmtp, type TestSmtp } from './support/smtp.js';
import { freshCode } from './support/totp.js';
import { adminCommand } from './support/admin.js';
import { sidOf } from './support/until.js';
import { runPurgeOnce } from '../server/jobs/purge.js';
import { securityLogTypes } from '../shared/constants.js';
import type { SecurityLogEntry } from '../shared/schemas/security.js';
import { ErrorCode } from '../shared/errors.js';

const APP_URL = 'https://sam.example.test';
const CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const FIREFOX = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14.6; rv:133.0) Gecko/20100101 Firefox/133.0';

let app: TestApp;
let smtp: TestSmtp;
const { track, closeAll } = tabTracker();

beforeAll(async () => {
  smtp = await startSmtp();
  app = await startTestApp(productionEnv({ RATE_LIMIT_PER_MINUTE: '100000', SMTP_URL: smtp.url, APP_URL, TRUST_PROXY: 'loopback' }));
});
afterAll(async () => {
  closeAll();
  await app?.close();
  await smtp?.close();
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) => new RestClient(app.url).post(`/api/v1/auth${path}`, body, { headers });
const loginAs = async (email: string, password: string, headers: Record<string, string> = {}) => {
  const client = new RestClient(app.url);
  const res = await client.post('/api/v1/auth/login', { email, password }, { headers });
  return { client, res };
};

/** Every entry of the user's log, page by page (newest first). */
async function wholeLog(tab: Tab, limit = 7): Promise<SecurityLogEntry[]> {
  await app.deps.securityLog.flush();
  const all: SecurityLogEntry[] = [];
  let before: string | undefined;
  for (;;) {
    const page = await tab.call('security:log', before === undefined ? { limit } : { before, limit });
    all.push(...page.events);
    if (!page.hasMore) return all;
    before = page.events.at(-1)!.at;
  }
}

describe('AUTH-18 the security log', () => {
  it('[AUTH-18] after the flows of sign-in, lockout, two-factor, password change and reset, revocation, refresh reuse and admin grants, the user\'s log shows every kind of entry, each with time, IP and user agent', async () => {
    const alice = await signUp(app.url);
    const ip = { 'x-forwarded-for': '203.0.113.9', 'user-agent': CHROME };
    // admin_granted, admin_revoked
    expect((await adminCommand(app, 'grant', alice.email)).code).toBe(0);
    expect((await adminCommand(app, 'revoke', alice.email)).code).toBe(0);
    // login_succeeded from Chrome, login_failed
    const chrome = await loginAs(alice.email, alice.password, ip);
    expect(chrome.res.status).toBe(200);
    expect((await loginAs(alice.email, 'Wrong-password-0!', ip)).res.status).toBe(401);
    // mfa_enabled, recovery_code_used, recovery_codes_regenerated, mfa_disabled
    const tab = track(await connectReady(app.url, chrome.res.body.accessToken));
    const { secret } = await tab.call('mfa:setup', {});
    const { recoveryCodes } = await tab.call('mfa:enable', { password: alice.password, code: (await freshCode(secret)).code });
    const challenged = await post('/login', { email: alice.email, password: alice.password }, ip);
    expect(challenged.body.code).toBe(ErrorCode.MFA_REQUIRED);
    const second = await post('/login/mfa', { challenge: challenged.body.details.challenge, code: recoveryCodes[0]! }, ip);
    expect(second.status).toBe(200);
    const { recoveryCodes: fresh } = await tab.call('mfa:recovery-codes', { password: alice.password, code: recoveryCodes[1]! });
    await tab.call('mfa:disable', { password: alice.password, code: fresh[0]! });
    // session_revoked
    const spare = await logIn(app.url, alice.email, alice.password);
    await tab.call('session:revoke', { id: sidOf(spare.auth.accessToken) });
    // refresh_reuse_detected: the grace serves one request with a retired token, the next is a reuse
    const retired = spare.client.cookie;
    const racer = await logIn(app.url, alice.email, alice.password);
    const old = racer.client.cookie!;
    expect((await racer.client.post('/api/v1/auth/refresh')).status).toBe(200);
    for (let i = 0; i < 2; i++) {
      const again = new RestClient(app.url);
      again.cookie = old;
      await again.post('/api/v1/auth/refresh');
    }
    expect(retired).toBeDefined();
    // password_changed
    const changed = strongPassword();
    await tab.call('user:password', { currentPassword: alice.password, newPassword: changed });
    // account_locked (five failures)
    for (let i = 0; i < 5; i++) await loginAs(alice.email, `Wrong-password-${i}!`, ip);
    expect((await loginAs(alice.email, changed, ip)).res.status).toBe(423);
    // password_reset_requested, password_reset
    expect((await post('/password/forgot', { email: alice.email }, ip)).status).toBe(202);
    const token = resetTokenIn(await smtp.waitFor(alice.email), APP_URL);
    const final = strongPassword();
    expect((await post('/password/reset', { token, password: final }, ip)).status).toBe(204);

    const reader = await loginAs(alice.email, final, ip);
    const readerTab = track(await connectReady(app.url, reader.res.body.accessToken));
    const log = await wholeLog(readerTab);
    const types = new Set(log.map((e) => e.type));
    expect([...types].sort()).toEqual([...securityLogTypes].sort());
    // Newest first, every entry with its time; sign-ins with IP, user agent and device.
    const times = log.map((e) => Date.parse(e.at));
    expect(times).toEqual([...times].sort((x, y) => y - x));
    for (const e of log) expect(Object.keys(e).sort()).toEqual(['at', 'device', 'ip', 'type', 'userAgent']);
    const chromeSignIn = log.find((e) => e.type === 'login_succeeded' && e.userAgent === CHROME);
    expect(chromeSignIn).toMatchObject({ ip: '203.0.113.9', device: 'Chrome on Linux' });
    expect(log.find((e) => e.type === 'login_failed')).toMatchObject({ ip: '203.0.113.9', userAgent: CHROME });
    expect(log.find((e) => e.type === 'password_reset')).toMatchObject({ ip: '203.0.113.9', userAgent: CHROME, device: 'Chrome on Linux' });
    // Changes made over the socket carry the user agent its session signed in with (a socket keeps no headers).
    for (const type of ['mfa_enabled', 'recovery_codes_regenerated', 'mfa_disabled', 'session_revoked', 'password_changed'] as const) {
      expect(log.find((e) => e.type === type), type).toMatchObject({ userAgent: CHROME, device: 'Chrome on Linux', ip: expect.any(String) });
    }
    expect(log.filter((e) => e.type === 'recovery_code_used')).toHaveLength(3);

    // Operators read all of it, by email too.
    const cli = await adminCommand(app, 'security-log', '--email', alice.email, '--limit', '500');
    expect(cli.code).toBe(0);
    const rows = cli.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; email: string; ip: string | null });
    expect(rows).toHaveLength(log.length);
    expect(new Set(rows.map((r) => r.type))).toEqual(types);
    expect(rows.every((r) => r.email === alice.email)).toBe(true);
  }, 120_000);

  it('[AUTH-18] a user never sees another user\'s entries, and failures for an email with no account are only in the operators\' view', async () => {
    const alice = await signUp(app.url);
    const bob = await signUp(app.url);
    const nobody = uniqueEmail('nobody');
    await loginAs(alice.email, 'Wrong-password-1!');
    await loginAs(nobody, 'Wrong-password-1!');
    await logIn(app.url, bob.email, bob.password);
    const aliceTab = track(await connectReady(app.url, alice.auth.accessToken));
    const bobTab = track(await connectReady(app.url, bob.auth.accessToken));
    const aliceLog = await wholeLog(aliceTab, 100);
    const bobLog = await wholeLog(bobTab, 100);
    expect(aliceLog.map((e) => e.type).sort()).toEqual(['login_failed', 'login_succeeded']);
    expect(bobLog.map((e) => e.type)).toEqual(['login_succeeded', 'login_succeeded']);
    const rows = await app.deps.sql<{ userId: string | null; email: string | null }[]>`select user_id, email from security_events where email = ${nobody}`;
    expect(rows).toEqual([{ userId: null, email: nobody }]);
    const cli = await adminCommand(app, 'security-log', '--email', nobody);
    expect(cli.stdout).toContain('"type":"login_failed"');
  });

  it('[AUTH-18] paging: newest first, `before` and `limit` (1..100, default 50), `hasMore`', async () => {
    const user = await signUp(app.url);
    for (let i = 0; i < 6; i++) await loginAs(user.email, user.password);
    const tab = track(await connectReady(app.url, user.auth.accessToken));
    await app.deps.securityLog.flush();
    const all = await tab.call('security:log', {});
    expect(all.events).toHaveLength(7);
    expect(all.hasMore).toBe(false);
    const first = await tab.call('security:log', { limit: 3 });
    expect(first.events).toEqual(all.events.slice(0, 3));
    expect(first.hasMore).toBe(true);
    const next = await tab.call('security:log', { before: first.events[2]!.at, limit: 3 });
    expect(next.events).toEqual(all.events.slice(3, 6));
    for (const limit of [0, 101, 1.5]) {
      expect(await tab.request('security:log', { limit })).toMatchObject({ ok: false, error: { code: ErrorCode.VALIDATION } });
    }
    expect(await tab.request('security:log', { before: 'yesterday' })).toMatchObject({ ok: false, error: { code: ErrorCode.VALIDATION } });
  });

  it('[AUTH-18] append-only: PostgreSQL refuses to change an entry; entries older than 400 days are purged, younger ones kept; socket handshakes write nothing', async () => {
    const user = await signUp(app.url);
    await app.deps.securityLog.flush();
    await expect(app.deps.sql`update security_events set type = 'login_failed' where user_id = ${user.auth.user.id}`).rejects.toThrow(/append-only/);
    const day = 86_400_000;
    const entry = (daysAgo: number) => ({ at: new Date(Date.now() - daysAgo * day), userId: user.auth.user.id, email: null, type: 'login_succeeded' as const, ip: null, userAgent: null, device: null, network: null, details: { daysAgo } });
    await app.deps.securityRepository.insertEvents([entry(401), entry(399)]);
    await runPurgeOnce({ redis: app.deps.redis, tasks: app.deps.tasks, security: app.deps.securityRepository, logger: app.deps.logger });
    const left = await app.deps.sql<{ details: { daysAgo?: number } | null }[]>`select details from security_events where user_id = ${user.auth.user.id} order by at`;
    expect(left.map((r) => r.details?.daysAgo ?? null)).toEqual([399, null]);

    const before = await app.deps.sql<{ n: number }[]>`select count(*)::int as n from security_events`;
    const tabs = await Promise.all(Array.from({ length: 5 }, () => connectReady(app.url, user.auth.accessToken)));
    for (const t of tabs) track(t);
    await app.deps.securityLog.flush();
    const after = await app.deps.sql<{ n: number }[]>`select count(*)::int as n from security_events`;
    expect(after[0]!.n).toBe(before[0]!.n);
  });
});

describe('§6.3b new-device notice', () => {
  async function signedUpWithTab(): Promise<{ user: SignedUp; tab: Tab }> {
    const user = await signUp(app.url);
    return { user, tab: track(await connectReady(app.url, user.auth.accessToken)) };
  }

  it('[AUTH-18] a sign-in from a device or network the account has not used tells the other tabs with security:new-device; a known one does not, the signup\'s own device included', async () => {
    const { user, tab } = await signedUpWithTab();
    // The signup's device and network: known.
    expect((await loginAs(user.email, user.password)).res.status).toBe(200);
    // A new device: Chrome.
    const chrome = await loginAs(user.email, user.password, { 'user-agent': CHROME });
    const notice = await tab.waitFor('security:new-device');
    expect(notice).toEqual({
      session: { id: sidOf(chrome.res.body.accessToken), createdAt: expect.any(String), userAgent: CHROME, device: 'Chrome on Linux', ip: '127.0.0.1' },
    });
    // Chrome again from the same network: known. The same device from another network, and Firefox: new.
    await loginAs(user.email, user.password, { 'user-agent': CHROME, 'x-forwarded-for': '127.0.0.9' });
    const elsewhere = await loginAs(user.email, user.password, { 'user-agent': CHROME, 'x-forwarded-for': '192.0.2.44' });
    await tab.waitFor('security:new-device', (d) => d.session.id === sidOf(elsewhere.res.body.accessToken));
    const firefox = await loginAs(user.email, user.password, { 'user-agent': FIREFOX, 'x-forwarded-for': '192.0.2.45' });
    const ff = await tab.waitFor('security:new-device', (d) => d.session.id === sidOf(firefox.res.body.accessToken));
    expect(ff.session).toMatchObject({ device: 'Firefox on macOS', ip: '192.0.2.45' });
    await app.deps.securityLog.flush();
    expect(tab.received.filter((r) => r.event === 'security:new-device')).toHaveLength(3);
  });

  it('[AUTH-18] the signup is the account\'s first sign-in (it tells nobody, and the next sign-in from another device is new); a failed login never tells', async () => {
    const { user, tab } = await signedUpWithTab();
    await loginAs(user.email, 'Wrong-password-1!', { 'user-agent': CHROME });
    const chrome = await loginAs(user.email, user.password, { 'user-agent': CHROME });
    await tab.waitFor('security:new-device', (d) => d.session.id === sidOf(chrome.res.body.accessToken));
    await app.deps.securityLog.flush();
    expect(tab.received.filter((r) => r.event === 'security:new-device')).toHaveLength(1);
    const rows = await app.deps.sql<{ type: string }[]>`select type from security_events where user_id = ${user.auth.user.id} order by at`;
    expect(rows.map((r) => r.type)).toEqual(['login_succeeded', 'login_failed', 'login_succeeded']);
  });
});
