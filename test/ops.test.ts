/** Operators (PROTOCOL §7): Prometheus metrics per node and the live /ops view of the cluster. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io as ioClient } from 'socket.io-client';
import { productionEnv, randomSecret, uniqueEmail, uniquePrefix } from './support/env.js';
import { startTestApp, type TestApp } from './support/app.js';
import { RestClient } from './support/http.js';
import { signUp } from './support/users.js';
import { signUpAdmin } from './support/admin.js';
import { closed, connectError, connectReady, type Tab } from './support/sockets.js';
import { ErrorCode } from '../shared/errors.js';
import type { OpsSnapshot } from '../shared/schemas/ops.js';

const tabs: Tab[] = [];
const track = <T extends Tab>(t: T) => (tabs.push(t), t);
const metricsToken = randomSecret();

async function scrape(app: TestApp): Promise<string> {
  const res = await new RestClient(app.url).get('/metrics', { authorization: `Bearer ${metricsToken}` });
  expect(res.status).toBe(200);
  return res.body as string;
}
/** The value of one sample, e.g. sample(text, 'sam_rate_limited_total{scope="socket"}'). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function connectOps(url: string, token: string) {
  const socket = ioClient(`${url}/ops`, { transports: ['websocket'], auth: { token }, reconnection: false, forceNew: true });
  const snapshots: OpsSnapshot[] = [];
  socket.on('ops:snapshot', (s: OpsSnapshot) => snapshots.push(s));
  return { socket, snapshots };
}

describe('metrics', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp(productionEnv({ METRICS_TOKEN: metricsToken, SOCKET_EVENTS_PER_MINUTE: '4' }));
  });
  afterAll(async () => {
    for (const t of tabs) t.close();
    await app.close();
  });

  it('/metrics without the token is 401, with it 200 in Prometheus text format', async () => {
    const anon = await new RestClient(app.url).get('/metrics');
    expect(anon.status).toBe(401);
    expect(anon.body.code).toBe(ErrorCode.UNAUTHENTICATED);
    const wrong = await new RestClient(app.url).get('/metrics', { authorization: `Bearer ${randomSecret()}` });
    expect(wrong.status).toBe(401);
    const text = await scrape(app);
    expect(text).toContain('# TYPE sam_sockets_connected gauge');
    expect(text).toContain('# TYPE sam_socket_event_duration_seconds histogram');
    expect(text).toContain('process_resident_memory_bytes');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
  });

  it('three sockets connected → the gauge says 3; a refused handshake → the failure counter with its reason', async () => {
    const user = await signUp(app.url);
    for (let i = 0; i < 3; i++) track(await connectReady(app.url, user.auth.accessToken));
    expect(await connectError(app.url, 'garbage')).toBe(ErrorCode.UNAUTHENTICATED);
    const text = await scrape(app);
    expect(sample(text, 'sam_sockets_connected')).toBe(3);
    expect(sample(text, 'sam_socket_users_connected')).toBe(1);
    expect(sample(text, 'sam_socket_connections_total')).toBe(3);
    expect(sample(text, 'sam_handshake_failures_total{reason="UNAUTHENTICATED"}')).toBe(1);
    for (const t of tabs.splice(0)) {
      const gone = closed(t);
      t.close();
      await gone;
    }
    await new Promise((r) => setTimeout(r, 100));
    const after = await scrape(app);
    expect(sample(after, 'sam_sockets_connected')).toBe(0);
    expect(sample(after, 'sam_socket_disconnections_total{reason="client namespace disconnect"}')).toBe(3);
  });

  it('a VALIDATION ack → the event counter with that outcome; a rate-limited event → its counter', async () => {
    const user = await signUp(app.url);
    const tab = track(await connectReady(app.url, user.auth.accessToken));
    expect(await tab.request('task:create', { title: '' })).toMatchObject({ ok: false, error: { code: ErrorCode.VALIDATION } });
    expect((await tab.request('task:list', {})).ok).toBe(true);
    await tab.request('task:list', {});
    await tab.request('task:list', {});
    expect(await tab.request('task:list', {})).toMatchObject({ ok: false, error: { code: ErrorCode.RATE_LIMITED } });
    const text = await scrape(app);
    expect(sample(text, 'sam_socket_events_total{event="task:create",outcome="VALIDATION"}')).toBe(1);
    expect(sample(text, 'sam_socket_events_total{event="task:list",outcome="ok"}')).toBe(3);
    expect(sample(text, 'sam_socket_events_total{event="task:list",outcome="RATE_LIMITED"}')).toBe(1);
    expect(sample(text, 'sam_rate_limited_total{scope="socket"}')).toBe(1);
    expect(sample(text, 'sam_socket_event_duration_seconds_count{event="task:list"}')).toBe(4);
    expect(sample(text, 'sam_http_requests_total{route="/api/v1/auth/signup",status="201"}')).toBeGreaterThanOrEqual(2);
  });
});

describe('/ops namespace across two nodes', () => {
  let a: TestApp;
  let b: TestApp;
  let adminToken: string;
  beforeAll(async () => {
    const shared = { REDIS_PREFIX: uniquePrefix(), SECRET_KEY: randomSecret(), METRICS_TOKEN: metricsToken };
    a = await startTestApp(productionEnv({ ...shared, NODE_ID: 'ops-a' }));
    b = await startTestApp(productionEnv({ ...shared, NODE_ID: 'ops-b' }));
    const admin = await signUpAdmin(a, { email: uniqueEmail('admin') });
    adminToken = admin.auth.accessToken;
  });
  afterAll(async () => {
    for (const t of tabs) t.close();
    await a?.close();
    await b?.close();
  });

  it('a non-admin socket on /ops is refused with FORBIDDEN', async () => {
    const user = await signUp(a.url);
    const { socket } = connectOps(a.url, user.auth.accessToken);
    const message = await new Promise<string>((resolve) => socket.once('connect_error', (e) => resolve(e.message)));
    expect(message).toBe(ErrorCode.FORBIDDEN);
    socket.close();
  });

  it('an admin gets snapshots listing both nodes; after one stops, it drops out within 10 s', async () => {
    const user = await signUp(a.url);
    track(await connectReady(b.url, user.auth.accessToken));
    const { socket, snapshots } = connectOps(a.url, adminToken);
    const deadline = Date.now() + 10_000;
    const listsBoth = (s: OpsSnapshot) => s.nodes.length === 2 && s.nodes.some((n) => n.id === 'ops-b' && n.sockets >= 1);
    while (Date.now() < deadline && !snapshots.some(listsBoth)) await new Promise((r) => setTimeout(r, 100));
    const both = snapshots.find(listsBoth)!;
    expect(both.nodes.map((n) => n.id)).toEqual(['ops-a', 'ops-b']);
    expect(both.nodes.find((n) => n.id === 'ops-b')!.sockets).toBeGreaterThanOrEqual(1);
    expect(both.totals.sockets).toBe(both.nodes.reduce((s, n) => s + n.sockets, 0));
    for (const key of ['startedAt', 'users', 'eventsPerSecond', 'eventP50Ms', 'eventP99Ms', 'handshakeFailures', 'rateLimited', 'activeStreams', 'rssBytes', 'eventLoopLagMs']) {
      expect(both.nodes[0]).toHaveProperty(key);
    }
    expect(new Date(both.at).getTime()).toBeGreaterThan(Date.now() - 10_000);
    // Snapshots come at least every 2 s.
    const before = snapshots.length;
    await new Promise((r) => setTimeout(r, 2_100));
    expect(snapshots.length).toBeGreaterThan(before);

    const stopAt = Date.now();
    await b.close();
    while (Date.now() - stopAt < 10_000) {
      const last = snapshots.at(-1)!;
      if (new Date(last.at).getTime() > stopAt && last.nodes.length === 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const last = snapshots.at(-1)!;
    expect(last.nodes.map((n) => n.id)).toEqual(['ops-a']);
    expect(Date.now() - stopAt).toBeLessThan(10_000);
    socket.close();
  }, 30_000);
});

describe('/ops admin actions', () => {
  it('an admin disconnecting a user closes that user\'s sockets on both nodes; the action is audited', async () => {
    const shared = { REDIS_PREFIX: uniquePrefix(), SECRET_KEY: randomSecret() };
    await using a = await startTestApp(productionEnv({ ...shared, NODE_ID: 'act-a' }));
    await using b = await startTestApp(productionEnv({ ...shared, NODE_ID: 'act-b' }));
    const admin = await signUpAdmin(a, { email: uniqueEmail('admin') });
    const user = await signUp(a.url);
    const bystander = await signUp(a.url);
    const onA = track(await connectReady(a.url, user.auth.accessToken));
    const onB = track(await connectReady(b.url, user.auth.accessToken));
    const other = track(await connectReady(b.url, bystander.auth.accessToken));
    const { socket } = connectOps(a.url, admin.auth.accessToken);
    await new Promise<void>((r) => socket.once('connect', () => r()));
    const listed = await socket.timeout(5_000).emitWithAck('ops:users', {});
    expect(listed.ok).toBe(true);
    expect(listed.data.users).toEqual(expect.arrayContaining([{ userId: user.auth.user.id, email: user.email, sockets: 2, sessions: 1 }]));
    const both = Promise.all([closed(onA, 3_000), closed(onB, 3_000)]);
    const res = await socket.timeout(5_000).emitWithAck('ops:disconnect-user', { userId: user.auth.user.id });
    expect(res).toEqual({ ok: true, data: { sockets: 2 } });
    await both;
    expect(other.socket.connected).toBe(true);
    await a.logs.waitFor((r) => r.type === 'admin_action' && r.action === 'disconnect_user' && r.userId === user.auth.user.id);
    // Revoking: the user's tokens stop working everywhere.
    const revoked = await socket.timeout(5_000).emitWithAck('ops:revoke-user', { userId: user.auth.user.id });
    expect(revoked).toEqual({ ok: true, data: { sessions: 1 } });
    expect(await connectError(b.url, user.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    const bad = await socket.timeout(5_000).emitWithAck('ops:revoke-user', { userId: 'nope' });
    expect(bad).toMatchObject({ ok: false, error: { code: ErrorCode.VALIDATION } });
    socket.close();
  });
});
