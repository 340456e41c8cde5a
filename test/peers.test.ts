/**
 * RT-7 with one node, then two: a node that no other node listens to keeps its
 * broadcasts off Redis (`Broadcaster.watchPeers`), and a node that starts
 * beside it gets them from its first socket on. Production-mode nodes on the
 * real Redis; a MONITOR connection sees what each node publishes.
 */
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import { productionEnv, randomSecret, uniquePrefix } from './support/env.js';
import { startTestApp, type TestApp } from './support/app.js';
import { logIn, signUp } from './support/users.js';
import { closed, connectReady, type Tab } from './support/sockets.js';
import { PEER_CHECK_MS } from '../server/realtime/rooms.js';

const prefix = uniquePrefix();
const shared = { REDIS_PREFIX: prefix, SECRET_KEY: randomSecret() };
const tabs: Tab[] = [];
const track = <T extends Tab>(t: T) => (tabs.push(t), t);
let a: TestApp;
let b: TestApp | undefined;
let monitor: Awaited<ReturnType<Redis['monitor']>>;
let redis: Redis;
/** the channels of the PUBLISH commands seen, of this file's cluster */
const published: string[] = [];

const aloneLog = (alone: boolean) => (r: Record<string, unknown>) => r.event === 'peers' && r.alone === alone;

beforeAll(async () => {
  redis = new Redis(inject('redisUrl'));
  monitor = await redis.monitor();
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args[0]?.toLowerCase() === 'publish' && args[1]?.startsWith(prefix)) published.push(args[1]);
  });
  a = await startTestApp(productionEnv({ ...shared, NODE_ID: 'node-a' }));
});
afterAll(async () => {
  for (const t of tabs) t.close();
  await b?.close();
  await a?.close();
  monitor?.disconnect();
  redis?.disconnect();
});

/** Waits until MONITOR has shown every command sent so far (a PING of its own goes through after them). */
async function monitorCaughtUp(): Promise<void> {
  const mark = `sam-test-mark-${Math.random()}`;
  let onCommand: ((_time: string, args: string[]) => void) | undefined;
  const seen = new Promise<void>((resolve) => {
    onCommand = (_time, args) => {
      if (args[1] === mark) resolve();
    };
    monitor.on('monitor', onCommand);
  });
  await redis.echo(mark);
  await seen;
  monitor.off('monitor', onCommand!);
}

describe('a node alone, then two', () => {
  it('[RT-7][RT-5] alone, a node delivers to its own tabs and closes revoked sessions, publishing nothing; a node started beside it gets its changes from its first tab on', async () => {
    await a.logs.waitFor(aloneLog(true));
    const user = await signUp(a.url);
    const tabA = track(await connectReady(a.url, user.auth.accessToken));
    const other = track(await connectReady(a.url, user.auth.accessToken));
    await monitorCaughtUp();
    published.length = 0;
    const { task } = await tabA.call('task:create', { title: 'Alone on node A' });
    await other.waitFor('task:changed', (d) => d.task.id === task.id);
    await tabA.call('task:update', { id: task.id, patch: { title: 'Still alone' } });
    await other.waitFor('task:changed', (d) => d.task.title === 'Still alone');
    // A revocation closes the session's socket on this node, without the adapter.
    const second = await logIn(a.url, user.email, user.password);
    const victim = track(await connectReady(a.url, second.auth.accessToken));
    const revoked = victim.waitFor('session:revoked', undefined, 2_000);
    const gone = closed(victim, 2_000);
    expect(await tabA.request('session:revoke', { id: victim.ready.sessionId })).toEqual({ ok: true, data: {} });
    expect(await revoked).toMatchObject({ reason: 'session_revoked' });
    await gone;
    await monitorCaughtUp();
    expect(published).toEqual([]);

    // Node B starts, and a tab connects to it at once: its handshake waits until node A heard of B.
    b = await startTestApp(productionEnv({ ...shared, NODE_ID: 'node-b' }));
    const tabB = track(await connectReady(b.url, user.auth.accessToken));
    expect(a.logs.records().filter(aloneLog(false))).toHaveLength(1);
    await tabA.call('task:update', { id: task.id, patch: { title: 'Seen on B' } });
    expect((await tabB.waitFor('task:changed', (d) => d.task.title === 'Seen on B')).task.id).toBe(task.id);
    await monitorCaughtUp();
    expect(published.length).toBeGreaterThan(0);
    // And B's changes reach A's tabs.
    await tabB.call('task:update', { id: task.id, patch: { title: 'From B' } });
    await tabA.waitFor('task:changed', (d) => d.task.title === 'From B');
    await other.waitFor('task:changed', (d) => d.task.title === 'From B');

    // Once B is gone, A counts itself alone again within a check or two.
    await b.close();
    b = undefined;
    await vi.waitFor(() => expect(a.logs.records().filter(aloneLog(true))).toHaveLength(2), { timeout: 3 * PEER_CHECK_MS, interval: 100 });
    await monitorCaughtUp();
    published.length = 0;
    await tabA.call('task:update', { id: task.id, patch: { title: 'Alone again' } });
    await other.waitFor('task:changed', (d) => d.task.title === 'Alone again');
    await monitorCaughtUp();
    expect(published).toEqual([]);
  }, 30_000);
});
