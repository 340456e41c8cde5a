import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { appendDelta, bufferKeys, BUFFER_TTL_SECONDS, readBuffer, refreshBuffer, rewriteDeltas, saveToolCalls } from './stream-buffer.js';

// The machine's Redis, with a prefix of this run's own.
const redis = new Redis({ host: '127.0.0.1', port: 6379, keyPrefix: `test-sb-${randomUUID()}:` });
afterAll(() => redis.quit());

describe('stream buffer (CHAT-3)', () => {
  it('holds the content so far and lastSeq = the last appended seq; nothing before the first delta', async () => {
    const id = randomUUID();
    expect(await readBuffer(redis, id)).toBeUndefined();
    expect(await appendDelta(redis, id, 0, 'Hel')).toBe(true);
    expect(await appendDelta(redis, id, 1, 'lo')).toBe(true);
    await saveToolCalls(redis, id, [{ id: 't1', name: 'list_tasks', input: {}, status: 'ok', result: { tasks: [] } }]);
    expect(await readBuffer(redis, id)).toEqual({ content: 'Hello', lastSeq: 1, toolCalls: [{ id: 't1', name: 'list_tasks', input: {}, status: 'ok', result: { tasks: [] } }] });
    const ttl = await redis.ttl(bufferKeys(id)[0]!);
    expect(ttl).toBeGreaterThan(BUFFER_TTL_SECONDS - 5);
  });

  it('reports an append out of step with its seq, and a rewrite puts every delta back in order', async () => {
    const id = randomUUID();
    await appendDelta(redis, id, 0, 'a');
    // delta 1 was lost (a Redis blip): delta 2 lands at index 1
    expect(await appendDelta(redis, id, 2, 'c')).toBe(false);
    expect(await rewriteDeltas(redis, id, ['a', 'b', 'c'])).toBe(true);
    expect(await appendDelta(redis, id, 3, 'd')).toBe(true);
    expect(await readBuffer(redis, id)).toEqual({ content: 'abcd', lastSeq: 3, toolCalls: [] });
    await refreshBuffer(redis, id);
    await redis.del(...bufferKeys(id));
    expect(await readBuffer(redis, id)).toBeUndefined();
  });

  it('reads as no buffer when Redis cannot be reached (the caller falls back to PostgreSQL)', async () => {
    const away = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      expect(await readBuffer(away, randomUUID())).toBeUndefined();
    } finally {
      away.disconnect();
    }
  });
});
