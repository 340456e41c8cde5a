/**
 * The gateway and live tasks (PROTOCOL §5, §6.1): two production-mode nodes on
 * one PostgreSQL and one Redis, real socket.io-client tabs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { productionEnv, randomSecret, uniquePrefix } from './support/env.js';
import { startTestApp, type TestApp } from './support/app.js';
import { signUp } from './support/users.js';
import { closed, connectError, connectReady, type Tab } from './support/sockets.js';
import { ErrorCode } from '../shared/errors.js';

let a: TestApp;
let b: TestApp;
const tabs: Tab[] = [];
const track = <T extends Tab>(t: T) => (tabs.push(t), t);

beforeAll(async () => {
  const shared = { REDIS_PREFIX: uniquePrefix(), SECRET_KEY: randomSecret(), RATE_LIMIT_PER_MINUTE: '10000', CORS_ORIGINS: 'https://sam.example.test' };
  a = await startTestApp(productionEnv({ ...shared, NODE_ID: 'node-a' }));
  b = await startTestApp(productionEnv({ ...shared, NODE_ID: 'node-b' }));
});
afterAll(async () => {
  for (const t of tabs) t.close();
  await a?.close();
  await b?.close();
});

describe('RT-1 handshake', () => {
  it('[RT-1] missing, malformed, wrongly typed, expired and revoked tokens are refused with their code', async () => {
    const user = await signUp(a.url);
    expect(await connectError(a.url, undefined)).toBe(ErrorCode.UNAUTHENTICATED);
    expect(await connectError(a.url, 'not-a-jwt')).toBe(ErrorCode.UNAUTHENTICATED);
    expect(await connectError(a.url, user.client.cookie)).toBe(ErrorCode.UNAUTHENTICATED);
    expect(await connectError(a.url, 12345)).toBe(ErrorCode.UNAUTHENTICATED);
    await using short = await startTestApp(productionEnv({ ACCESS_TOKEN_EXPIRE_MINUTES: '0.02' }));
    const shortUser = await signUp(short.url);
    await new Promise((r) => setTimeout(r, 2_200));
    expect(await connectError(short.url, shortUser.auth.accessToken)).toBe(ErrorCode.TOKEN_EXPIRED);
    await user.client.post('/api/v1/auth/logout', undefined, { token: user.auth.accessToken });
    expect(await connectError(b.url, user.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    expect(a.logs.records().some((r) => r.type === 'socket_auth_failed')).toBe(true);
  });

  it('[RT-1] a browser Origin outside CORS_ORIGINS is refused; the allowed one, the own one and none connect', async () => {
    const user = await signUp(a.url);
    const foreign = await connectError(a.url, user.auth.accessToken, { origin: 'https://evil.example' });
    expect(foreign).not.toBe('connected');
    // The upgrade itself is refused (HTTP 403), before any handshake or event.
    expect(foreign).toBe('websocket error');
    const refusal = await a.logs.waitFor((r) => r.type === 'socket_auth_failed' && r.reason === ErrorCode.FORBIDDEN);
    expect(refusal.origin).toBe('https://evil.example');
    const allowed = track(await connectReady(a.url, user.auth.accessToken, { origin: 'https://sam.example.test' }));
    expect(allowed.ready.user.id).toBe(user.auth.user.id);
    const own = track(await connectReady(a.url, user.auth.accessToken, { origin: a.url }));
    expect(own.socket.connected).toBe(true);
    const none = track(await connectReady(a.url, user.auth.accessToken));
    expect(none.socket.connected).toBe(true);
  });

  it('[RT-2] session:ready carries user, sessionId, tokenExpiresAt, taskSeq, nodeId and serverTime', async () => {
    const user = await signUp(a.url, { timezone: 'Asia/Tokyo' });
    const tab = track(await connectReady(b.url, user.auth.accessToken));
    expect(tab.ready).toMatchObject({
      user: { id: user.auth.user.id, email: user.email, timezone: 'Asia/Tokyo', role: 'user' },
      tokenExpiresAt: user.auth.expiresAt,
      taskSeq: 0,
      nodeId: 'node-b',
    });
    expect(tab.ready.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(Math.abs(new Date(tab.ready.serverTime).getTime() - Date.now())).toBeLessThan(5_000);
  });
});

describe('RT-7 rooms across nodes', () => {
  it('[RT-7][TASK-6] a change on node A reaches both tabs (sender included, on A and B) with the same seq; another user hears nothing', async () => {
    const alice = await signUp(a.url);
    const bob = await signUp(b.url);
    const tabA = track(await connectReady(a.url, alice.auth.accessToken));
    const tabB = track(await connectReady(b.url, alice.auth.accessToken));
    const bobTab = track(await connectReady(b.url, bob.auth.accessToken));
    const { task } = await tabA.call('task:create', { title: 'Write the report', deadline: '2030-01-15' });
    expect(task.seq).toBe(1);
    const onA = await tabA.waitFor('task:changed', (d) => d.task.id === task.id);
    const onB = await tabB.waitFor('task:changed', (d) => d.task.id === task.id);
    expect(onA).toEqual({ seq: 1, task });
    expect(onB).toEqual({ seq: 1, task });
    const update = await tabB.call('task:update', { id: task.id, patch: { title: 'Write the final report' } });
    expect((await tabA.waitFor('task:changed', (d) => d.seq === 2)).task).toEqual(update.task);
    // Bob can neither hear nor touch it.
    await new Promise((r) => setTimeout(r, 200));
    expect(bobTab.received.filter((r) => r.event.startsWith('task:'))).toEqual([]);
    const stolen = await bobTab.request('task:update', { id: task.id, patch: { title: 'mine' } });
    expect(stolen).toMatchObject({ ok: false, error: { code: ErrorCode.NOT_FOUND } });
    const list = await bobTab.call('task:list', {});
    expect(list.tasks).toEqual([]);
  });

  it('[TASK-4] a node never refuses or skips a change on what it last saw when another node changed the task since', async () => {
    const user = await signUp(a.url);
    const tabA = track(await connectReady(a.url, user.auth.accessToken));
    const tabB = track(await connectReady(b.url, user.auth.accessToken));
    const { task } = await tabA.call('task:create', { title: 'Seen on A' });
    await tabB.call('task:delete', { id: task.id });
    // Node A last saw the task open: it must still restore it, and not call a same-title patch "no change".
    expect((await tabA.call('task:restore', { id: task.id })).task.status).toBe('not_started');
    await tabB.call('task:update', { id: task.id, patch: { title: 'Renamed on B' } });
    const back = await tabA.call('task:update', { id: task.id, patch: { title: 'Seen on A' } });
    expect(back.task).toMatchObject({ title: 'Seen on A', version: 5 });
  });
});

describe('SYNC-1 convergence', () => {
  it('[SYNC-1] a tab disconnected while another makes 30 changes converges after reconnect and task:sync', async () => {
    const user = await signUp(a.url);
    const steady = track(await connectReady(a.url, user.auth.accessToken));
    const flaky = track(await connectReady(b.url, user.auth.accessToken));
    const seed = await steady.call('task:create', { title: 'seed task' });
    await flaky.waitFor('task:changed', (d) => d.task.id === seed.task.id);
    const localSeq = (await flaky.call('task:list', { view: 'active' })).seq;
    const local = new Map((await flaky.call('task:sync', { since: 0 })).tasks.map((t) => [t.id, t]));
    flaky.close();

    const ids: string[] = [seed.task.id];
    for (let i = 0; i < 10; i++) ids.push((await steady.call('task:create', { title: `task ${i}` })).task.id);
    for (let i = 0; i < 8; i++) await steady.call('task:update', { id: ids[i + 1]!, patch: { intensity: 5 } });
    for (let i = 0; i < 5; i++) await steady.call('task:complete', { id: ids[i + 1]! });
    for (let i = 0; i < 4; i++) await steady.call('task:delete', { id: ids[i + 6]! });
    await steady.call('task:purge', { id: ids[6]! });
    await steady.call('task:purge', { id: ids[7]! });
    await steady.call('task:restore', { id: ids[8]! });
    const seqNow = (await steady.call('task:list', {})).seq;
    expect(seqNow - localSeq).toBe(30);

    const back = track(await connectReady(b.url, user.auth.accessToken));
    expect(back.ready.taskSeq).toBe(seqNow);
    const sync = await back.call('task:sync', { since: localSeq });
    expect(sync.seq).toBe(seqNow);
    expect(sync.reset).toBeUndefined();
    for (const t of sync.tasks) local.set(t.id, t);
    for (const id of sync.removed) local.delete(id);
    expect(sync.removed.sort()).toEqual([ids[6], ids[7]].sort());

    for (const view of ['active', 'completed', 'deleted'] as const) {
      const truth = (await steady.call('task:list', { view })).tasks;
      const mine = [...local.values()].filter((t) =>
        view === 'active' ? t.status !== 'completed' && t.status !== 'deleted' : t.status === (view === 'completed' ? 'completed' : 'deleted'),
      );
      expect(new Set(mine.map((t) => JSON.stringify(t)))).toEqual(new Set(truth.map((t) => JSON.stringify(t))));
    }
  });
});

describe('AUTH-7 / RT-5 revocation reaches sockets on every node', () => {
  it('[AUTH-7][RT-5] logout through REST on node A disconnects the socket on node B within 2 s; the token is refused next time', async () => {
    const user = await signUp(a.url);
    const tab = track(await connectReady(b.url, user.auth.accessToken));
    const started = Date.now();
    const gone = closed(tab, 2_000);
    const res = await user.client.post('/api/v1/auth/logout', undefined, { token: user.auth.accessToken });
    expect(res.status).toBe(204);
    await gone;
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(tab.received.some((r) => r.event === 'session:revoked')).toBe(true);
    expect(await connectError(b.url, user.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
  });

  it('[AUTH-7] logout-all closes every session of the user on both nodes, and no other user\'s', async () => {
    const user = await signUp(a.url);
    const other = await signUp(a.url);
    const first = track(await connectReady(a.url, user.auth.accessToken));
    const second = track(await connectReady(b.url, user.auth.accessToken));
    const bystander = track(await connectReady(b.url, other.auth.accessToken));
    const both = Promise.all([closed(first, 2_000), closed(second, 2_000)]);
    expect((await user.client.post('/api/v1/auth/logout-all', undefined, { token: user.auth.accessToken })).status).toBe(204);
    await both;
    await new Promise((r) => setTimeout(r, 200));
    expect(bystander.socket.connected).toBe(true);
  });

  it('[AUTH-6][RT-5] a refresh-token replay closes the session\'s live sockets', async () => {
    const user = await signUp(a.url);
    const tab = track(await connectReady(b.url, user.auth.accessToken));
    const old = user.client.cookie;
    expect((await user.client.post('/api/v1/auth/refresh')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 5_200));
    const gone = closed(tab, 2_000);
    user.client.cookie = old;
    expect((await user.client.post('/api/v1/auth/refresh')).status).toBe(401);
    await gone;
  }, 15_000);
});

describe('RT-4 token lifetime on live sockets', () => {
  it('[RT-4] an idle socket gets auth:expired at expiry and is closed; one that sends auth:refresh stays', async () => {
    // 6-second tokens: a refresh 2.5 s in yields an expiry at least 2 whole seconds later than the first.
    await using node = await startTestApp(productionEnv({ ACCESS_TOKEN_EXPIRE_MINUTES: '0.1' }));
    const user = await signUp(node.url);
    const idle = track(await connectReady(node.url, user.auth.accessToken));
    const active = track(await connectReady(node.url, user.auth.accessToken));
    const expired = idle.waitFor('auth:expired', undefined, 10_000);
    const idleClosed = closed(idle, 10_000);
    await new Promise((r) => setTimeout(r, 2_500));
    const refreshed = await user.client.post('/api/v1/auth/refresh');
    expect(refreshed.status).toBe(200);
    const ack = await active.call('auth:refresh', { token: refreshed.body.accessToken });
    expect(ack.expiresAt).toBe(refreshed.body.expiresAt);
    await expired;
    await idleClosed;
    await new Promise((r) => setTimeout(r, 500));
    expect(active.socket.connected).toBe(true);
    expect(active.received.some((r) => r.event === 'auth:expired')).toBe(false);
  });

  it('[RT-4] auth:refresh with a token of another session is FORBIDDEN, with garbage UNAUTHENTICATED', async () => {
    const user = await signUp(a.url);
    const tab = track(await connectReady(a.url, user.auth.accessToken));
    const other = await signUp(a.url);
    expect(await tab.request('auth:refresh', { token: other.auth.accessToken })).toMatchObject({ ok: false, error: { code: ErrorCode.FORBIDDEN } });
    expect(await tab.request('auth:refresh', { token: 'nope' })).toMatchObject({ ok: false, error: { code: ErrorCode.UNAUTHENTICATED } });
  });
});

describe('RT-3 and RT-6 events', () => {
  it('[RT-3] a bad payload is VALIDATION with issues; an event without ack or an unknown event is dropped', async () => {
    const user = await signUp(a.url);
    const tab = track(await connectReady(a.url, user.auth.accessToken));
    const bad = await tab.request('task:update', { id: randomUUID(), patch: { title: '', bogus: 1 } } as never);
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.error.code).toBe(ErrorCode.VALIDATION);
      expect(bad.error.issues?.map((i) => i.path)).toEqual(expect.arrayContaining(['patch.title', 'patch']));
    }
    (tab.socket as any).emit('task:create', { title: 'no ack' });
    (tab.socket as any).emit('no:such-event', {}, () => undefined);
    await new Promise((r) => setTimeout(r, 300));
    expect((await tab.call('task:list', {})).tasks).toEqual([]);
    expect(tab.socket.connected).toBe(true);
  });

  it('[RT-6] past SOCKET_EVENTS_PER_MINUTE the ack is RATE_LIMITED with retryAfterMs; flooding past twice the limit disconnects', async () => {
    await using node = await startTestApp(productionEnv({ SOCKET_EVENTS_PER_MINUTE: '5' }));
    const user = await signUp(node.url);
    const tab = track(await connectReady(node.url, user.auth.accessToken));
    const acks = [];
    for (let i = 0; i < 7; i++) acks.push(await tab.request('task:list', {}));
    expect(acks.slice(0, 5).every((r) => r.ok)).toBe(true);
    for (const r of acks.slice(5)) {
      expect(r).toMatchObject({ ok: false, error: { code: ErrorCode.RATE_LIMITED } });
      if (!r.ok) expect(r.error.retryAfterMs).toBeGreaterThan(0);
    }
    const gone = closed(tab, 3_000);
    for (let i = 0; i < 5; i++) void tab.request('task:list', {}, 1_000).catch(() => undefined);
    await gone;
  });

  it('[RT-6] a frame over 256 KiB closes the socket', async () => {
    const user = await signUp(a.url);
    const tab = track(await connectReady(a.url, user.auth.accessToken));
    const gone = closed(tab, 3_000);
    (tab.socket as any).emit('task:create', { title: 'x'.repeat(300 * 1024) }, () => undefined);
    await gone;
  });
});
