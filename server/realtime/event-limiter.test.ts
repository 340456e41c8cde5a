import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createCommandClient } from '../redis.js';
import { AppError, ErrorCode } from '../errors.js';
import { createEventLimiter, limiterScripts } from './event-limiter.js';

// The machine's Redis, with a prefix of this run's own, through the server's own kind of client: two of them,
// as two nodes would have.
const prefix = `test-el-${randomUUID()}:`;
const nodeA = createCommandClient({ redisUrl: 'redis://127.0.0.1:6379', redisPrefix: prefix }, 'test-event-limiter-a', limiterScripts);
const nodeB = createCommandClient({ redisUrl: 'redis://127.0.0.1:6379', redisPrefix: prefix }, 'test-event-limiter-b', limiterScripts);
beforeAll(() => Promise.all([nodeA.connect(), nodeB.connect()]));
afterAll(async () => {
  const keys = await nodeA.keys(`${prefix}*`);
  if (keys.length > 0) await nodeA.unlink(...keys.map((k) => k.slice(prefix.length)));
  await Promise.all([nodeA.quit(), nodeB.quit()]);
});

/** The outcome of each consume, in order: 'ok' or the error's code with its details. */
function outcomes(calls: (() => void)[]): (string | { code: string; retryAfterMs?: number; details?: Record<string, unknown> })[] {
  return calls.map((call) => {
    try {
      call();
      return 'ok';
    } catch (err) {
      expect(err).toBeInstanceOf(AppError);
      const appErr = err as AppError;
      return { code: appErr.code, retryAfterMs: appErr.toWire().retryAfterMs, details: appErr.details };
    }
  });
}

/** Polls Redis through `client` until `key` holds `value`, or fails after `timeoutMs`. */
async function redisReaches(client: Redis, key: string, value: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await client.get(key)) !== value) {
    if (Date.now() > deadline) throw new Error(`${key} did not reach ${value} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('RT-6 event limits', () => {
  it('[RT-6] counts one user\'s events across nodes: each node learns the others\' counts at its next sync', async () => {
    const a = createEventLimiter({ redis: nodeA, eventsPerMinute: 4, chatPerMinute: 2 });
    const b = createEventLimiter({ redis: nodeB, eventsPerMinute: 4, chatPerMinute: 2 });
    try {
      const user = randomUUID();
      expect(outcomes([() => a.consume(user, ['socket']), () => a.consume(user, ['socket']), () => a.consume(user, ['socket'])])).toEqual(['ok', 'ok', 'ok']);
      await a.sync();
      expect(outcomes([() => b.consume(user, ['socket'])])).toEqual(['ok']);
      await b.sync();
      // B now knows of A's three: the window's fifth is refused with the window's rest
      const [refused] = outcomes([() => b.consume(user, ['socket'])]);
      expect(refused).toMatchObject({ code: ErrorCode.RATE_LIMITED, details: { scope: 'socket', flooding: false } });
      const wait = (refused as { retryAfterMs: number }).retryAfterMs;
      expect(wait).toBeGreaterThan(55_000);
      expect(wait).toBeLessThanOrEqual(60_000);
      await b.sync();
      // the counter lives a minute, under the client's prefix, and holds every node's events
      expect(await nodeA.get(`rl:sock:${user}`)).toBe('5');
      expect(await nodeA.pttl(`rl:sock:${user}`)).toBeGreaterThan(55_000);
      outcomes([() => a.consume(user, ['socket'])]);
      await a.sync();
      expect(() => a.consume(user, ['socket'])).toThrow(expect.objectContaining({ code: ErrorCode.RATE_LIMITED }));
      // another user is not affected
      expect(a.consume(randomUUID(), ['socket'])).toBeUndefined();
    } finally {
      a.close();
      b.close();
    }
  });

  it('[RT-6] counts reach Redis within syncMs, and at once from a user who sends syncAfter events', async () => {
    // One limiter syncs on its timer only (syncAfter out of reach), the other only after syncAfter events (its
    // timer a minute away): each count can reach Redis the one way only.
    const timed = createEventLimiter({ redis: nodeA, eventsPerMinute: 100, chatPerMinute: 2, syncMs: 50, syncAfter: 1_000 });
    const eager = createEventLimiter({ redis: nodeA, eventsPerMinute: 100, chatPerMinute: 2, syncMs: 60_000, syncAfter: 3 });
    try {
      const [quiet, busy] = [randomUUID(), randomUUID()];
      timed.consume(quiet, ['socket']);
      expect(await nodeB.get(`rl:sock:${quiet}`)).toBeNull();
      await redisReaches(nodeB, `rl:sock:${quiet}`, '1', 5_000);
      eager.consume(busy, ['socket']);
      eager.consume(busy, ['socket']);
      expect(await nodeB.get(`rl:sock:${busy}`)).toBeNull();
      eager.consume(busy, ['socket']);
      await redisReaches(nodeB, `rl:sock:${busy}`, '3', 5_000);
    } finally {
      timed.close();
      eager.close();
    }
  });

  it('[RT-6] a chat:send counts against both scopes whatever either says, and is refused by the chat limit', async () => {
    const limiter = createEventLimiter({ redis: nodeA, eventsPerMinute: 10, chatPerMinute: 2 });
    const user = randomUUID();
    expect(outcomes([() => limiter.consume(user, ['socket', 'chat']), () => limiter.consume(user, ['socket', 'chat'])])).toEqual(['ok', 'ok']);
    expect(outcomes([() => limiter.consume(user, ['socket', 'chat'])])).toEqual([expect.objectContaining({ code: ErrorCode.RATE_LIMITED, details: { scope: 'chat', flooding: false } })]);
    // the refused send still counted against the socket scope: 3 of 10 used, 7 left
    const rest = outcomes(Array.from({ length: 8 }, () => () => limiter.consume(user, ['socket'])));
    expect(rest.filter((r) => r === 'ok')).toHaveLength(7);
  });

  it('[RT-6] more than twice the limit marks the socket as flooding', async () => {
    const limiter = createEventLimiter({ redis: nodeA, eventsPerMinute: 3, chatPerMinute: 1 });
    const user = randomUUID();
    const results = outcomes(Array.from({ length: 8 }, () => () => limiter.consume(user, ['socket'])));
    expect(results.slice(0, 3)).toEqual(['ok', 'ok', 'ok']);
    const flooding = (r: (typeof results)[number]) => (typeof r === 'string' ? undefined : r.details?.['flooding']);
    expect(results.slice(3, 6).map(flooding)).toEqual([false, false, false]);
    expect(results.slice(6).map(flooding)).toEqual([true, true]);
  });

  it('[RT-6] while Redis cannot be reached, the same limits hold per process', async () => {
    const away = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, scripts: limiterScripts });
    try {
      const limiter = createEventLimiter({ redis: away, eventsPerMinute: 2, chatPerMinute: 1 });
      const user = randomUUID();
      const results = outcomes([() => limiter.consume(user, ['socket']), () => limiter.consume(user, ['socket']), () => limiter.consume(user, ['socket'])]);
      expect(results.slice(0, 2)).toEqual(['ok', 'ok']);
      expect(results[2]).toMatchObject({ code: ErrorCode.RATE_LIMITED, details: { scope: 'socket' } });
    } finally {
      away.disconnect();
    }
  });
});
