import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { appendDeltas, beat, bufferKeys, BUFFER_TTL_SECONDS, heartbeatKey, readBuffer, rewriteDeltas, saveToolCalls, streamScripts } from './stream-buffer.js';
import { createCommandClient } from '../../redis.js';

// The machine's Redis, with a prefix of this run's own, through the server's own kind of client.
const prefix = `test-sb-${randomUUID()}:`;
const redis = createCommandClient({ redisUrl: 'redis://127.0.0.1:6379', redisPrefix: prefix }, 'test-stream-buffer', streamScripts);
beforeAll(() => redis.connect());
afterAll(() => redis.quit());

const appendDelta = async (messageId: string, seq: number, text: string) => (await appendDeltas(redis, [{ messageId, seq, text }]))[0];

describe('stream buffer (CHAT-3)', () => {
  it('holds the content so far and lastSeq = the last appended seq; nothing before the first delta', async () => {
    const id = randomUUID();
    expect(await readBuffer(redis, id)).toBeUndefined();
    expect(await appendDelta(id, 0, 'Hel')).toBe(true);
    expect(await appendDelta(id, 1, 'lo')).toBe(true);
    await saveToolCalls(redis, id, [{ id: 't1', name: 'list_tasks', input: {}, status: 'ok', result: { tasks: [] } }]);
    expect(await readBuffer(redis, id)).toEqual({ content: 'Hello', lastSeq: 1, toolCalls: [{ id: 't1', name: 'list_tasks', input: {}, status: 'ok', result: { tasks: [] } }] });
    const ttl = await redis.ttl(bufferKeys(id)[0]!);
    expect(ttl).toBeGreaterThan(BUFFER_TTL_SECONDS - 5);
  });

  it('reports an append out of step with its seq, and a rewrite puts every delta back in order', async () => {
    const id = randomUUID();
    await appendDelta(id, 0, 'a');
    // delta 1 was lost (a Redis blip): delta 2 lands at index 1
    expect(await appendDelta(id, 2, 'c')).toBe(false);
    expect(await rewriteDeltas(redis, id, ['a', 'b', 'c'])).toBe(true);
    expect(await appendDelta(id, 3, 'd')).toBe(true);
    expect(await readBuffer(redis, id)).toEqual({ content: 'abcd', lastSeq: 3, toolCalls: [] });
    await redis.del(...bufferKeys(id));
    expect(await readBuffer(redis, id)).toBeUndefined();
  });

  it("beats for every stream of a node at once: each one's heartbeat set, and its buffer kept longer", async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    await appendDelta(a, 0, 'x');
    await saveToolCalls(redis, b, []);
    await redis.expire(bufferKeys(a)[0]!, 5);
    await redis.expire(bufferKeys(b)[1]!, 5);
    await beat(redis, 'node-1', 15_000, [a, b]);
    for (const id of [a, b]) {
      expect(await redis.get(heartbeatKey(id))).toBe('node-1');
      const pttl = await redis.pttl(heartbeatKey(id));
      expect(pttl).toBeGreaterThan(10_000);
      expect(pttl).toBeLessThanOrEqual(15_000);
    }
    expect(await redis.ttl(bufferKeys(a)[0]!)).toBeGreaterThan(BUFFER_TTL_SECONDS - 5);
    expect(await redis.ttl(bufferKeys(b)[1]!)).toBeGreaterThan(BUFFER_TTL_SECONDS - 5);
    // keys that were never written stay absent (EXPIRE does not create them)
    expect(await redis.exists(bufferKeys(a)[1]!, bufferKeys(b)[0]!)).toBe(0);
  });

  it('appends the deltas of many streams in one command, each to its own list, under the key prefix', async () => {
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    await appendDelta(c, 0, 'x');
    const monitor = await redis.duplicate({ keyPrefix: '' }).monitor();
    // MONITOR sees the whole server (other test files run beside this one): keep the commands on this file's keys.
    const commands: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      const name = args[0]!.toLowerCase();
      const key = name === 'evalsha' || name === 'eval' ? args[3] : args[1];
      if (key?.startsWith(prefix)) commands.push(name);
    });
    try {
      // c's delta 1 was lost: its delta 2 is out of step, the others are in step
      expect(await appendDeltas(redis, [{ messageId: a, seq: 0, text: 'A0' }, { messageId: b, seq: 0, text: 'B0' }, { messageId: c, seq: 2, text: 'z' }])).toEqual([true, true, false]);
      expect(await appendDeltas(redis, [{ messageId: a, seq: 1, text: 'A1' }, { messageId: b, seq: 1, text: 'B1' }])).toEqual([true, true]);
      // MONITOR reports a moment later
      for (let i = 0; i < 50 && commands.filter((cmd) => cmd === 'rpush').length < 5; i++) await new Promise((r) => setTimeout(r, 20));
    } finally {
      monitor.disconnect();
    }
    expect(commands.filter((cmd) => cmd === 'evalsha' || cmd === 'eval')).toHaveLength(2);
    expect(commands.filter((cmd) => cmd === 'rpush')).toHaveLength(5);
    expect(await readBuffer(redis, a)).toEqual({ content: 'A0A1', lastSeq: 1, toolCalls: [] });
    expect(await readBuffer(redis, b)).toEqual({ content: 'B0B1', lastSeq: 1, toolCalls: [] });
    expect(await redis.ttl(bufferKeys(b)[0]!)).toBeGreaterThan(BUFFER_TTL_SECONDS - 5);
  });

  it('appends first thing on a fresh client, beside other commands of the same turn: the script is defined with the client', async () => {
    const fresh = createCommandClient({ redisUrl: 'redis://127.0.0.1:6379', redisPrefix: prefix }, 'test-stream-buffer-fresh', streamScripts);
    try {
      await fresh.connect();
      const id = randomUUID();
      // One loop turn, the script never run on this connection before (EVAL, then EVALSHA).
      const [set, appended] = await Promise.all([fresh.set(`other:${id}`, '1', 'EX', 60), appendDeltas(fresh, [{ messageId: id, seq: 0, text: 'first' }])]);
      expect(set).toBe('OK');
      expect(appended).toEqual([true]);
      expect(await readBuffer(fresh, id)).toEqual({ content: 'first', lastSeq: 0, toolCalls: [] });
    } finally {
      fresh.disconnect();
    }
  });

  it('reports every append as out of step when Redis cannot be reached', async () => {
    const away = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, scripts: streamScripts });
    try {
      expect(await appendDeltas(away, [{ messageId: randomUUID(), seq: 0, text: 'a' }, { messageId: randomUUID(), seq: 4, text: 'b' }])).toEqual([false, false]);
    } finally {
      away.disconnect();
    }
  });

  it('reads as no buffer when Redis cannot be reached (the caller falls back to PostgreSQL)', async () => {
    const away = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, scripts: streamScripts });
    try {
      expect(await readBuffer(away, randomUUID())).toBeUndefined();
    } finally {
      away.disconnect();
    }
  });
});
