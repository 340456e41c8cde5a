/**
 * PROTOCOL §3a, additions: the operators' `admin sign-out <email>`,
 * `sign-out --all --yes` and `disconnect <email>` reach every node from the
 * command line, which has no socket of its own: a sign-out revokes as AUTH-7
 * does for "all" and the tabs on both nodes hear `session:revoked` (RT-5); a
 * disconnect revokes nothing and the tabs may come back with the same token.
 */
import { describe, expect, it } from 'vitest';
import { productionEnv, randomSecret, uniqueEmail, uniquePrefix } from './support/env.js';
import { useTwoNodes, type TestApp } from './support/app.js';
import { signUp, logIn, type SignedUp } from './support/users.js';
import { adminCommand, runCli } from './support/admin.js';
import { closed, connectError, connectReady, type Tab } from './support/sockets.js';
import { ErrorCode } from '../shared/errors.js';

/** The nodes' environment, which the command line runs with too. */
const env = productionEnv({ REDIS_PREFIX: uniquePrefix(), SECRET_KEY: randomSecret(), RATE_LIMIT_PER_MINUTE: '10000' });
const nodes = useTwoNodes(() => env);
const { track } = nodes;
const a = (): TestApp => nodes.a;
const b = (): TestApp => nodes.b;

/** A user with two sessions, a tab of the first on node A and one of the second on node B. */
async function twoTabs(tag: string): Promise<{ first: SignedUp; second: SignedUp; onA: Tab; onB: Tab }> {
  const first = await signUp(a().url, { email: uniqueEmail(tag) });
  const second = await logIn(b().url, first.email, first.password);
  const onA = track(await connectReady(a().url, first.auth.accessToken));
  const onB = track(await connectReady(b().url, second.auth.accessToken));
  return { first, second, onA, onB };
}

/** Resolves with the reason of the tab's next disconnect (watch before the command runs: it may close it before it exits). */
const closing = (tab: Tab) => closed(tab, 20_000);

/** The tab heard `session:revoked` with this reason, then was closed by the server. */
async function signedOut(tab: Tab, gone: Promise<string>, reason: string): Promise<void> {
  expect(await gone).toBe('io server disconnect');
  expect(tab.received.filter((r) => r.event === 'session:revoked').map((r) => r.data)).toEqual([{ reason }]);
}

/** Both sessions are over: the access tokens are refused at the handshake of either node, the refresh cookies too. */
async function refusedEverywhere(...users: SignedUp[]): Promise<void> {
  for (const user of users) {
    expect(await connectError(a().url, user.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    expect(await connectError(b().url, user.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    const refreshed = await user.client.post<{ code: string }>('/api/v1/auth/refresh');
    expect(refreshed.status).toBe(401);
    expect(refreshed.body.code).toBe(ErrorCode.TOKEN_REVOKED);
  }
}

describe('§3a admin sign-out and disconnect, on every node', () => {
  it('[§3a][AUTH-7][RT-5] the built `admin sign-out <email>` closes the account\'s tabs on both nodes with session:revoked; its tokens and refresh cookies are refused; the security log says an operator did it', async () => {
    const { first, second, onA, onB } = await twoTabs('signed-out');
    const bystander = await signUp(b().url, { email: uniqueEmail('bystander') });
    const bystanderTab = track(await connectReady(a().url, bystander.auth.accessToken));

    const gone = [closing(onA), closing(onB)];
    const result = await runCli(env, 'admin', 'sign-out', first.email.toUpperCase());
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`revoked 2 sessions of ${first.email}`);
    expect(result.stderr).toMatch(/"type":"admin_action".*"action":"sign_out"/);
    await Promise.all([signedOut(onA, gone[0]!, 'admin_revoked'), signedOut(onB, gone[1]!, 'admin_revoked')]);
    await refusedEverywhere(first, second);

    // No one else was touched.
    expect(bystanderTab.socket.connected).toBe(true);
    expect((await bystander.client.post('/api/v1/auth/refresh')).status).toBe(200);

    // [AUTH-18] the user's own security log has the record, by the operator.
    const log = await runCli(env, 'admin', 'security-log', '--email', first.email, '--limit', '1');
    const [entry] = log.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; details: Record<string, unknown> });
    expect(entry).toMatchObject({ type: 'session_revoked', details: { by: 'operator', sessions: 2 } });
    expect(typeof entry!.details.operator).toBe('string');

    // Signed out already: nothing left to revoke, still exit 0.
    const again = await adminCommand(a(), 'sign-out', first.email);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('revoked 0 sessions');
  }, 60_000);

  it('[§3a] unknown accounts exit 1 and usage errors exit 2, changing nothing', async () => {
    const unknown = await runCli(env, 'admin', 'sign-out', uniqueEmail('nobody'));
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no account/);
    expect((await adminCommand(a(), 'disconnect', uniqueEmail('nobody'))).code).toBe(1);

    for (const args of [['sign-out'], ['sign-out', 'not-an-email'], ['sign-out', 'x@example.test', 'y@example.test'], ['sign-out', '--all', '--force'], ['disconnect'], ['disconnect', '--all']]) {
      const result = await adminCommand(a(), ...args);
      expect(result.code, args.join(' ')).toBe(2);
    }
    expect((await runCli(env, 'admin', 'sign-out', '--everyone')).code).toBe(2);
  }, 60_000);

  it('[§3a] with Redis unreachable, a sign-out fails before it changes anything', async () => {
    const { first, onA } = await twoTabs('no-redis');
    const result = await runCli({ ...env, REDIS_URL: 'redis://127.0.0.1:9' }, 'admin', 'sign-out', first.email);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/nothing was changed/);
    expect(onA.socket.connected).toBe(true);
    expect((await first.client.post('/api/v1/auth/refresh')).status).toBe(200);
  }, 60_000);

  it('[§3a][RT-5] `admin disconnect <email>` closes the account\'s tabs on both nodes without session:revoked; they reconnect with the same tokens', async () => {
    const { first, onA, onB } = await twoTabs('disconnected');
    const gone = [closing(onA), closing(onB)];
    const result = await runCli(env, 'admin', 'disconnect', first.email);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/"type":"admin_action".*"action":"disconnect_user"/);
    expect(await Promise.all(gone)).toEqual(['io server disconnect', 'io server disconnect']);
    for (const tab of [onA, onB]) {
      expect(tab.received.some((r) => r.event === 'session:revoked')).toBe(false);
      const readies = tab.received.filter((r) => r.event === 'session:ready').length;
      // A server-side disconnect is not retried by socket.io-client itself; the app's client reconnects (connection.svelte.ts).
      tab.socket.connect();
      await tab.waitFor('session:ready', () => tab.received.filter((r) => r.event === 'session:ready').length > readies);
      expect(tab.socket.connected).toBe(true);
    }
    expect((await first.client.post('/api/v1/auth/refresh')).status).toBe(200);
    // Not a security change: the account's security log has no record of it.
    const log = await runCli(env, 'admin', 'security-log', '--email', first.email);
    expect(log.stdout).not.toContain('session_revoked');
  }, 60_000);

  it('[§3a][AUTH-7][RT-5] `sign-out --all` without --yes says what it would do and changes nothing; with --yes it signs every account out on both nodes', async () => {
    const one = await twoTabs('everyone-1');
    const two = await twoTabs('everyone-2');

    const dry = await runCli(env, 'admin', 'sign-out', '--all');
    expect(dry.code).toBe(2);
    expect(dry.stderr).toMatch(/would revoke \d+ open sessions of \d+ accounts/);
    expect(dry.stderr).toContain('--yes');
    for (const tab of [one.onA, one.onB, two.onA, two.onB]) expect(tab.socket.connected).toBe(true);
    // The tokens still open sockets: nothing was revoked.
    track(await connectReady(b().url, one.first.auth.accessToken));

    const tabs = [one.onA, one.onB, two.onA, two.onB];
    const gone = tabs.map(closing);
    const result = await runCli(env, 'admin', 'sign-out', '--all', '--yes');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/revoked \d+ sessions of \d+ accounts/);
    await Promise.all(tabs.map((tab, i) => signedOut(tab, gone[i]!, 'admin_revoked')));
    await refusedEverywhere(one.first, one.second, two.first, two.second);
    const log = await runCli(env, 'admin', 'security-log', '--email', two.first.email, '--limit', '1');
    expect(JSON.parse(log.stdout.trim())).toMatchObject({ type: 'session_revoked', details: { by: 'operator', sessions: 2 } });

    // A new sign-in works as before.
    const back = await logIn(a().url, one.first.email, one.first.password);
    track(await connectReady(b().url, back.auth.accessToken));
  }, 90_000);
});
