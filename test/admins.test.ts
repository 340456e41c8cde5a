/**
 * PROTOCOL §3a and AUTH-12: admins are granted by an operator on the command
 * line, never by signing up; the role is PostgreSQL's at every handshake and
 * refresh, and a revoke closes the account's `/ops` sockets on every node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { io as ioClient, type Socket } from 'socket.io-client';
import { productionEnv, randomSecret, uniqueEmail, uniquePrefix } from './support/env.js';
import { startCluster, type Cluster, type TestApp } from './support/app.js';
import { signUp } from './support/users.js';
import { adminCommand, runCli, signUpAdmin } from './support/admin.js';
import { runProcess } from './support/process.js';
import { closedWithin, connectReady, tabTracker } from './support/sockets.js';
import { ErrorCode } from '../shared/errors.js';

const repoRoot = path.resolve(import.meta.dirname, '..');

function connectOps(url: string, token: string): Socket & { revoked: { reason: string }[]; outcome: Promise<string> } {
  const socket = ioClient(`${url}/ops`, { transports: ['websocket'], auth: { token }, reconnection: false, forceNew: true });
  const revoked: { reason: string }[] = [];
  socket.on('session:revoked', (data: { reason: string }) => revoked.push(data));
  // 'connected', or the connect_error message.
  const outcome = new Promise<string>((resolve) => {
    socket.once('connect', () => resolve('connected'));
    socket.once('connect_error', (err) => resolve(err.message));
  });
  return Object.assign(socket, { revoked, outcome });
}

const opsOutcome = (socket: { outcome: Promise<string> }) => socket.outcome;

let cluster: Cluster;
let env: Record<string, string | undefined>;
const sockets: Socket[] = [];
const { track, closeAll } = tabTracker();
const a = (): TestApp => cluster.nodes[0]!;
const b = (): TestApp => cluster.nodes[1]!;

beforeAll(async () => {
  env = productionEnv({ REDIS_PREFIX: uniquePrefix(), SECRET_KEY: randomSecret(), RATE_LIMIT_PER_MINUTE: '10000' });
  cluster = await startCluster(2, env);
});
afterAll(async () => {
  for (const s of sockets) s.close();
  closeAll();
  await cluster?.close();
});

describe('§3a admins by operator grant', () => {
  it('[§3a][AUTH-12] signing up never makes an admin; a grant shows from the next token, and only then does /ops let the account in', async () => {
    const user = await signUp(a().url, { email: uniqueEmail('would-be-admin') });
    expect(user.auth.user.role).toBe('user');
    const before = connectOps(a().url, user.auth.accessToken);
    sockets.push(before);
    expect(await opsOutcome(before)).toBe(ErrorCode.FORBIDDEN);

    expect((await adminCommand(a(), 'grant', user.email)).code).toBe(0);
    // The token in hand still says "user": the database is an upper bound, never a promotion of an old token.
    const stale = connectOps(b().url, user.auth.accessToken);
    sockets.push(stale);
    expect(await opsOutcome(stale)).toBe(ErrorCode.FORBIDDEN);

    const refreshed = await user.client.post('/api/v1/auth/refresh');
    expect(refreshed.status).toBe(200);
    const claims = JSON.parse(Buffer.from(refreshed.body.accessToken.split('.')[1], 'base64url').toString()) as { role: string };
    expect(claims.role).toBe('admin');
    const granted = connectOps(b().url, refreshed.body.accessToken);
    sockets.push(granted);
    expect(await opsOutcome(granted)).toBe('connected');
    const tab = track(await connectReady(a().url, refreshed.body.accessToken));
    expect(tab.ready.user.role).toBe('admin');
    await a().logs.waitFor((r) => r.event === 'security' && r.type === 'admin_granted' && r.userId === user.auth.user.id);
  });

  it('[§3a] grant, revoke and list: exit codes and messages; no account, no grant; emails are trimmed and lower-cased', async () => {
    const user = await signUp(a().url, { email: uniqueEmail('listed') });
    const missing = uniqueEmail('nobody');
    const none = await adminCommand(a(), 'grant', missing);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(missing);
    expect((await adminCommand(a(), 'list')).stdout.split('\n')).not.toContain(missing);

    expect((await adminCommand(a(), 'grant', `  ${user.email.toUpperCase()} `)).code).toBe(0);
    expect((await adminCommand(a(), 'list')).stdout.split('\n')).toContain(user.email);
    expect((await adminCommand(a(), 'grant', user.email)).code).toBe(0);
    expect((await adminCommand(a(), 'revoke', user.email)).code).toBe(0);
    expect((await adminCommand(a(), 'list')).stdout.split('\n')).not.toContain(user.email);
    await a().logs.waitFor((r) => r.type === 'admin_revoked' && r.userId === user.auth.user.id);

    expect((await adminCommand(a(), 'promote', user.email)).code).toBe(2);
    expect((await adminCommand(a(), 'grant')).code).toBe(2);
    expect((await adminCommand(a(), 'grant', 'not-an-email')).code).toBe(2);
    // The audit records name the account, never its whole email.
    const records = a().logs.records().filter((r) => r.type === 'admin_granted' || r.type === 'admin_revoked');
    expect(JSON.stringify(records)).not.toContain(user.email);
  });

  it('[§3a] the built command line and `npm run admin` do the same against the server\'s database', async () => {
    const user = await signUp(a().url, { email: uniqueEmail('cli') });
    const granted = await runCli(env, 'admin', 'grant', user.email);
    expect(granted.code, granted.stderr).toBe(0);
    // The security log goes to stderr as a JSON line; stdout holds only results.
    expect(granted.stdout).toBe('');
    expect(granted.stderr).toMatch(/"type":"admin_granted"/);

    const listed = await runProcess(['run', '--silent', 'admin', '--', 'list'], env, { command: 'npm', cwd: repoRoot, timeoutMs: 60_000 });
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout.split('\n')).toContain(user.email);

    const revoked = await runCli(env, 'admin', 'revoke', user.email);
    expect(revoked.code).toBe(0);
    expect((await runCli(env, 'admin', 'list')).stdout.split('\n')).not.toContain(user.email);
    const unknown = await runCli(env, 'admin', 'grant', uniqueEmail('nobody'));
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no account/);
    // [AUTH-18] the durable security log, for operators: the grant and the revoke are in it.
    const log = await runCli(env, 'admin', 'security-log', '--email', user.email);
    expect(log.code, log.stderr).toBe(0);
    const types = log.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { type: string }).type);
    expect(types.slice(0, 2)).toEqual(['admin_revoked', 'admin_granted']);
    expect((await runCli(env, 'admin', 'security-log', '--limit', '0')).code).toBe(2);
  }, 90_000);

  it('[§3a][AUTH-7][RT-5][AUTH-12] a revoke closes the account\'s /ops sockets on both nodes within 2 s (role_changed); its app sockets stay; its next refresh says "user"', async () => {
    const admin = await signUpAdmin(a(), { email: uniqueEmail('demoted') });
    const onA = connectOps(a().url, admin.auth.accessToken);
    const onB = connectOps(b().url, admin.auth.accessToken);
    sockets.push(onA, onB);
    expect(await opsOutcome(onA)).toBe('connected');
    expect(await opsOutcome(onB)).toBe('connected');
    const app = track(await connectReady(b().url, admin.auth.accessToken));

    expect((await adminCommand(a(), 'revoke', admin.email)).code).toBe(0);
    const times = await Promise.all([closedWithin(onA, 2_500), closedWithin(onB, 2_500)]);
    for (const ms of times) expect(ms).toBeLessThan(2_000);
    expect(onA.revoked).toEqual([{ reason: 'role_changed' }]);
    expect(onB.revoked).toEqual([{ reason: 'role_changed' }]);
    expect(app.socket.connected).toBe(true);

    // The old admin token no longer opens /ops, and a refresh gives a token of role "user".
    const again = connectOps(a().url, admin.auth.accessToken);
    sockets.push(again);
    expect(await opsOutcome(again)).toBe(ErrorCode.FORBIDDEN);
    const refreshed = await admin.client.post('/api/v1/auth/refresh');
    expect(JSON.parse(Buffer.from(refreshed.body.accessToken.split('.')[1], 'base64url').toString()).role).toBe('user');
  });
});
