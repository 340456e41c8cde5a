/**
 * Handshakes, version 1.1: a handshake of a user who no longer exists is
 * refused in both namespaces (AUTH-12); at most MAX_SOCKETS_PER_USER sockets
 * per user across nodes, and dropped events count (RT-8); refused handshakes
 * are logged at a bounded rate (RT-1).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import jwt from 'jsonwebtoken';
import { io as ioClient } from 'socket.io-client';
import { productionEnv, randomSecret, uniquePrefix } from './support/env.js';
import { startCluster, startTestApp, type TestApp } from './support/app.js';
import { RestClient } from './support/http.js';
import { signUp } from './support/users.js';
import { closed, connectError, connectReady, tabTracker } from './support/sockets.js';
import { ErrorCode } from '../shared/errors.js';

const { track, closeAll } = tabTracker();
let app: TestApp;
const metricsToken = randomSecret();

beforeAll(async () => {
  app = await startTestApp(productionEnv({ RATE_LIMIT_PER_MINUTE: '10000', METRICS_TOKEN: metricsToken }));
});
afterAll(async () => {
  closeAll();
  await app?.close();
});

/** A handshake's outcome at `url` (a namespace's URL): 'connected' or the connect_error message. */
function handshake(url: string, token: string): Promise<string> {
  const socket = ioClient(url, { transports: ['websocket'], auth: { token }, reconnection: false, forceNew: true });
  return new Promise<string>((resolve) => {
    socket.once('connect', () => resolve('connected'));
    socket.once('connect_error', (err) => resolve(err.message));
  }).finally(() => socket.close());
}

describe('AUTH-12 a handshake checks the user', () => {
  it('[AUTH-12] a handshake of a user who no longer exists is refused, in both namespaces, even while the blacklist knows nothing of it', async () => {
    const user = await signUp(app.url);
    // An admin token, as an account that was one carries.
    const conn = app.deps.orm.em.getConnection();
    await conn.execute(`update users set role = 'admin' where id = ?`, [user.auth.user.id]);
    const refreshed = await user.client.post('/api/v1/auth/refresh');
    const token = refreshed.body.accessToken as string;
    expect((jwt.decode(token) as { role: string }).role).toBe('admin');
    expect(await handshake(`${app.url}/ops`, token)).toBe('connected');
    // The row goes without a revocation (a restore from a backup, a deletion by hand).
    await conn.execute('delete from users where id = ?', [user.auth.user.id]);
    expect(await handshake(app.url, token)).toBe(ErrorCode.TOKEN_REVOKED);
    expect(await handshake(`${app.url}/ops`, token)).toBe(ErrorCode.TOKEN_REVOKED);
  });
});

describe('RT-8 sockets per user and events that are dropped', () => {
  it('[RT-8] at most MAX_SOCKETS_PER_USER sockets per user across two nodes; the next handshake is RATE_LIMITED; a closed socket frees its place', async () => {
    await using cluster = await startCluster(2, productionEnv({ REDIS_PREFIX: uniquePrefix(), SECRET_KEY: randomSecret(), MAX_SOCKETS_PER_USER: '3' }));
    const [a, b] = cluster.nodes as [TestApp, TestApp];
    const user = await signUp(a.url);
    const other = await signUp(a.url);
    const first = track(await connectReady(a.url, user.auth.accessToken));
    track(await connectReady(b.url, user.auth.accessToken));
    track(await connectReady(a.url, user.auth.accessToken));
    expect(await connectError(b.url, user.auth.accessToken)).toBe(ErrorCode.RATE_LIMITED);
    expect(await connectError(a.url, user.auth.accessToken)).toBe(ErrorCode.RATE_LIMITED);
    // Another user is not affected.
    track(await connectReady(b.url, other.auth.accessToken));

    const gone = closed(first);
    first.close();
    await gone;
    let outcome = '';
    for (let i = 0; i < 20 && outcome !== 'connected'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      outcome = await handshake(b.url, user.auth.accessToken);
    }
    expect(outcome).toBe('connected');
    await a.logs.waitFor((r) => r.type === 'socket_auth_failed' && r.reason === ErrorCode.RATE_LIMITED);
  });

  it('[RT-8] events without an ack and unknown events count against SOCKET_EVENTS_PER_MINUTE; flooding with them disconnects', async () => {
    await using limited = await startTestApp(productionEnv({ SOCKET_EVENTS_PER_MINUTE: '4' }));
    const user = await signUp(limited.url);
    const tab = track(await connectReady(limited.url, user.auth.accessToken));
    (tab.socket as any).emit('task:list', {});
    (tab.socket as any).emit('task:list', {});
    (tab.socket as any).emit('no:such-event', {}, () => undefined);
    (tab.socket as any).emit('no:such-event', {});
    await new Promise((r) => setTimeout(r, 300));
    expect(await tab.request('task:list', {})).toMatchObject({ ok: false, error: { code: ErrorCode.RATE_LIMITED } });
    const gone = closed(tab, 5_000);
    for (let i = 0; i < 10; i++) (tab.socket as any).emit('no:such-event', {});
    await gone;
  });
});

describe('RT-1 refused handshakes are logged at a bounded rate', () => {
  it('[RT-1] 60 bad handshakes at once: every one counted in the metric, at most a few log lines a second, the next line says how many were left out', async () => {
    const before = app.logs.records().filter((r) => r.type === 'socket_auth_failed').length;
    const started = Date.now();
    const outcomes = await Promise.all(Array.from({ length: 60 }, (_, i) => handshake(app.url, `garbage-${i}`)));
    const seconds = (Date.now() - started) / 1000;
    expect(outcomes.every((o) => o === ErrorCode.UNAUTHENTICATED)).toBe(true);
    const lines = app.logs.records().filter((r) => r.type === 'socket_auth_failed').length - before;
    expect(lines).toBeGreaterThan(0);
    expect(lines).toBeLessThanOrEqual(10 * Math.ceil(seconds + 1));
    expect(lines).toBeLessThan(60);
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await handshake(app.url, 'garbage-after')).toBe(ErrorCode.UNAUTHENTICATED);
    // The lines after the burst's first say how many were left out before them: all 60 are accounted for, however
    // many one-second windows a loaded machine spread the burst over.
    const logged = app.logs.records().filter((r) => r.type === 'socket_auth_failed').slice(before);
    expect(logged.reduce((n, r) => n + Number(r.suppressed ?? 0), 0)).toBe(60 - lines);
    const metrics = await new RestClient(app.url).get('/metrics', { authorization: `Bearer ${metricsToken}` });
    const line = (metrics.body as string).split('\n').find((l) => l.startsWith('sam_handshake_failures_total{reason="UNAUTHENTICATED"}'));
    expect(Number(line?.split(' ')[1])).toBeGreaterThanOrEqual(61);
  });
});
