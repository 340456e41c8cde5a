/**
 * SYNC-1 across a Redis restart (server/realtime/catch-up.ts): a change made
 * while Redis is away reaches only its own node's tabs; once Redis is back,
 * every node closes its sockets of before, so that the tabs that missed it
 * reconnect and catch up. Found by the fault drill (test/drill.test.ts), where
 * tabs stayed behind PostgreSQL for good after a Redis restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { productionEnv, randomSecret, uniquePrefix } from './support/env.js';
import { startCluster, type Cluster } from './support/app.js';
import { signUp } from './support/users.js';
import { closed, connectReady, tabTracker } from './support/sockets.js';
import { startOwnRedis, type OwnRedis } from './support/redis-server.js';
import { until } from './support/until.js';

let own: OwnRedis;
let cluster: Cluster;
const tabs = tabTracker();

beforeAll(async () => {
  own = await startOwnRedis();
  cluster = await startCluster(2, productionEnv({ REDIS_URL: own.url, REDIS_PREFIX: uniquePrefix(), SECRET_KEY: randomSecret(), RATE_LIMIT_PER_MINUTE: '10000' }));
});
afterAll(async () => {
  tabs.closeAll();
  await cluster?.close();
  await own?.[Symbol.asyncDispose]();
});

describe('catching up after a Redis restart', () => {
  it('[SYNC-1] a task changed while Redis was away reaches the other node\'s tab: its socket is closed once Redis is back, and it catches up', async () => {
    const [a, b] = cluster.nodes as [Cluster['nodes'][0], Cluster['nodes'][0]];
    const user = await signUp(a.url);
    const token = user.auth.accessToken;
    const tabA = tabs.track(await connectReady(a.url, token));
    const tabB = tabs.track(await connectReady(b.url, token));
    const before = await tabB.call('task:list', {});

    await own.stop();
    await until(async () => a.deps.redisWatch.isUp, (up) => !up, 5_000, 'node a sees Redis down');
    const id = randomUUID();
    const created = await tabA.call('task:create', { id, title: 'made while Redis was away' });
    await tabA.waitFor('task:changed', (d) => d.task.id === id);

    const bClosed = closed(tabB, 15_000);
    const aClosed = closed(tabA, 15_000);
    await own.start();
    // Both nodes lost their subscription: every socket of before is closed by its server, and reconnects.
    expect(await bClosed).toBe('io server disconnect');
    expect(await aClosed).toBe('io server disconnect');
    expect(tabB.received.some((r) => r.event === 'task:changed' && r.data.task.id === id)).toBe(false);

    const again = tabs.track(await connectReady(b.url, token));
    const sync = await again.call('task:sync', { since: before.seq });
    expect(sync.tasks.map((t) => t.id)).toContain(id);
    expect(sync.seq).toBe(created.task.seq);
    // A socket connected after the recovery is left alone.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(again.socket.connected).toBe(true);
  }, 60_000);
});
