import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { autoCork } from './redis.js';

describe('autoCork', () => {
  const client = autoCork(new Redis({ host: '127.0.0.1', port: 6379, keyPrefix: `test-cork-${randomUUID()}:`, lazyConnect: true }));
  afterAll(() => client.quit());

  it('sends the commands of one loop turn in one write, each with its own answer, and the next turn in another', async () => {
    await client.connect();
    const stream = client.stream as unknown as { _writev: (...args: unknown[]) => unknown; _write: (...args: unknown[]) => unknown };
    const writes: number[] = [];
    const writev = stream._writev.bind(stream);
    const write = stream._write.bind(stream);
    stream._writev = (chunks: unknown, cb: unknown) => (writes.push((chunks as unknown[]).length), writev(chunks, cb));
    stream._write = (chunk: unknown, encoding: unknown, cb: unknown) => (writes.push(1), write(chunk, encoding, cb));
    const answers = await Promise.all([client.set('a', '1'), client.incr('n'), client.incr('n'), client.get('a')]);
    expect(answers).toEqual(['OK', 1, 2, '1']);
    expect(writes).toEqual([4]);
    expect(await client.get('n')).toBe('2');
    expect(writes).toEqual([4, 1]);
    await client.del('a', 'n');
  });
});
