/**
 * AUTH-7 and RT-5 (1.1) in the `/ops` namespace: every kind of revocation
 * closes the session's `/ops` sockets on every node within 2 s, as it closes
 * the app's; and each `/ops` event checks the session and the role first, so
 * a stolen admin token cannot keep acting after its session ended.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io as ioClient, type Socket } from 'socket.io-client';
import { productionEnv, randomSecret, uniquePrefix } from './support/env.js';
import { startCluster, type Cluster, type TestApp } from './support/app.js';
import { signUp, logIn } from './support/users.js';
import { signUpAdmin } from './support/admin.js';
import { closedWithin, connectError, connectReady, tabTracker } from './support/sockets.js';
import { ErrorCode } from '../shared/errors.js';

interface OpsTab {
  socket: Socket;
  revoked: { reason: string }[];
}

async function openOps(url: string, token: string): Promise<OpsTab> {
  const socket = ioClient(`${url}/ops`, { transports: ['websocket'], auth: { token }, reconnection: false, forceNew: true });
  const revoked: { reason: string }[] = [];
  socket.on('session:revoked', (data: { reason: string }) => revoked.push(data));
  opened.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (err) => reject(err));
  });
  return { socket, revoked };
}

let cluster: Cluster;
const opened: Socket[] = [];
const { track, closeAll } = tabTracker();
const a = (): TestApp => cluster.nodes[0]!;
const b = (): TestApp => cluster.nodes[1]!;

beforeAll(async () => {
  cluster = await startCluster(2, productionEnv({ REDIS_PREFIX: uniquePrefix(), SECRET_KEY: randomSecret(), RATE_LIMIT_PER_MINUTE: '10000' }));
});
afterAll(async () => {
  for (const s of opened) s.close();
  closeAll();
  await cluster?.close();
});

describe('AUTH-7 / RT-5 revocations close /ops sockets on every node', () => {
  it('[AUTH-7][RT-5] logout on node A closes the session\'s /ops socket on node B within 2 s; a stolen token can no longer revoke anyone', async () => {
    const admin = await signUpAdmin(a());
    const victim = await signUp(a().url);
    const ops = await openOps(b().url, admin.auth.accessToken);
    const gone = closedWithin(ops.socket);
    expect((await admin.client.post('/api/v1/auth/logout', undefined, { token: admin.auth.accessToken })).status).toBe(204);
    expect(await gone).toBeLessThan(2_000);
    expect(ops.revoked).toEqual([{ reason: 'logout' }]);
    expect(await connectError(`${b().url}/ops`, admin.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    // The victim was never touched.
    expect((await logIn(a().url, victim.email, victim.password)).auth.accessToken).toBeTruthy();
  });

  it('[AUTH-7][RT-5] logout-all, session:revoke and refresh-token reuse each close the /ops socket within 2 s, with their reason', async () => {
    type Admin = Awaited<ReturnType<typeof signUpAdmin>>;
    // Each case prepares, then returns the one request that revokes.
    const cases: { reason: string; prepare: (admin: Admin) => Promise<() => Promise<unknown>> }[] = [
      {
        reason: 'logout_all',
        prepare: async (admin) => {
          const other = await logIn(a().url, admin.email, admin.password);
          return () => other.client.post('/api/v1/auth/logout-all', undefined, { token: other.auth.accessToken });
        },
      },
      {
        reason: 'session_revoked',
        prepare: async (admin) => {
          const other = await logIn(a().url, admin.email, admin.password);
          const tab = track(await connectReady(a().url, other.auth.accessToken));
          const sid = JSON.parse(Buffer.from(admin.auth.accessToken.split('.')[1]!, 'base64url').toString()).sid as string;
          return () => tab.call('session:revoke', { id: sid });
        },
      },
      {
        reason: 'refresh_reuse',
        prepare: async (admin) => {
          const stolen = admin.client.cookie;
          expect((await admin.client.post('/api/v1/auth/refresh')).status).toBe(200);
          await new Promise((r) => setTimeout(r, 5_200)); // past the grace window
          admin.client.cookie = stolen;
          return () => admin.client.post('/api/v1/auth/refresh');
        },
      },
    ];
    for (const { reason, prepare } of cases) {
      const admin = await signUpAdmin(a());
      const ops = await openOps(b().url, admin.auth.accessToken);
      const revoke = await prepare(admin);
      const gone = closedWithin(ops.socket);
      await revoke();
      expect(await gone, reason).toBeLessThan(2_000);
      expect(ops.revoked, reason).toEqual([{ reason }]);
    }
  }, 30_000);

  it('[AUTH-7][RT-5] another admin\'s ops:revoke-user and account deletion close the /ops socket on the other node', async () => {
    const boss = await signUpAdmin(a());
    const target = await signUpAdmin(a());
    const targetOps = await openOps(b().url, target.auth.accessToken);
    const bossOps = await openOps(a().url, boss.auth.accessToken);
    const gone = closedWithin(targetOps.socket);
    const res = await bossOps.socket.timeout(5_000).emitWithAck('ops:revoke-user', { userId: target.auth.user.id });
    expect(res).toEqual({ ok: true, data: { sessions: 1 } });
    expect(await gone).toBeLessThan(2_000);
    expect(targetOps.revoked).toEqual([{ reason: 'admin_revoked' }]);

    const leaving = await signUpAdmin(a());
    const leavingOps = await openOps(b().url, leaving.auth.accessToken);
    const tab = track(await connectReady(a().url, leaving.auth.accessToken));
    const closed = closedWithin(leavingOps.socket);
    expect(await tab.request('user:delete', { password: leaving.password })).toEqual({ ok: true, data: {} });
    expect(await closed).toBeLessThan(2_000);
    expect(leavingOps.revoked).toEqual([{ reason: 'account_deleted' }]);
  });

  it('[AUTH-7][AUTH-12] each /ops event checks the session in PostgreSQL: a session ended where no broadcast told the node is refused at its next event', async () => {
    const admin = await signUpAdmin(a());
    const victim = await signUp(a().url);
    const ops = await openOps(b().url, admin.auth.accessToken);
    const sid = JSON.parse(Buffer.from(admin.auth.accessToken.split('.')[1]!, 'base64url').toString()).sid as string;
    // As if the revocation's fan-out had been lost: only the durable record says so.
    await b().deps.orm.em.getConnection().execute(`update sessions set revoked_at = now(), revoked_reason = 'logout' where id = ?`, [sid]);
    const res = await ops.socket
      .timeout(3_000)
      .emitWithAck('ops:revoke-user', { userId: victim.auth.user.id })
      .catch(() => ({ ok: false, error: { code: 'DISCONNECTED' } }));
    expect(res.ok).toBe(false);
    await closedWithin(ops.socket);
    // The victim's session was not revoked.
    const stillIn = track(await connectReady(a().url, victim.auth.accessToken));
    expect(stillIn.socket.connected).toBe(true);
  });
});
