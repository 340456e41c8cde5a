import { describe, expect, it } from 'vitest';
import { batched } from './batch.js';

describe('batched', () => {
  it('serves every lookup of one loop turn with one load, in order, and the next turn with another', async () => {
    const loads: number[][] = [];
    const double = batched(async (keys: number[]) => {
      loads.push(keys);
      return keys.map((k) => k * 2);
    });
    expect(await Promise.all([double(1), double(2), double(3)])).toEqual([2, 4, 6]);
    expect(await double(5)).toBe(10);
    expect(loads).toEqual([[1, 2, 3], [5]]);
  });

  it('rejects every waiter of a failed load, whether it threw or rejected; later lookups load again', async () => {
    let fail = true;
    const lookup = batched((keys: string[]) => {
      if (fail) throw new Error('down');
      return Promise.resolve(keys.map((k) => k.toUpperCase()));
    });
    const results = await Promise.allSettled([lookup('a'), lookup('b')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    expect(await lookup('c')).toBe('C');
  });

  it('splits a turn larger than maxBatch into several loads', async () => {
    const sizes: number[] = [];
    const id = batched(async (keys: number[]) => {
      sizes.push(keys.length);
      return keys;
    }, { maxBatch: 2 });
    expect(await Promise.all([1, 2, 3, 4, 5].map(id))).toEqual([1, 2, 3, 4, 5]);
    expect(sizes).toEqual([2, 2, 1]);
  });

  it('holds lookups made while a load is out and sends them together when it returns', async () => {
    const loads: number[][] = [];
    let release: () => void = () => undefined;
    const id = batched(async (keys: number[]) => {
      loads.push(keys);
      if (loads.length === 1) await new Promise<void>((r) => (release = r));
      return keys;
    });
    const first = id(1);
    await new Promise((r) => setImmediate(r)); // the first load is out now
    await new Promise((r) => setImmediate(r));
    const later = [id(2), id(3)];
    await new Promise((r) => setImmediate(r));
    const meanwhile = id(4);
    await new Promise((r) => setTimeout(r, 10));
    expect(loads).toEqual([[1]]);
    release();
    expect(await Promise.all([first, ...later, meanwhile])).toEqual([1, 2, 3, 4]);
    expect(loads).toEqual([[1], [2, 3, 4]]);
  });

  it('with a window, lookups of several loop turns within it go in one load, and a full batch does not wait', async () => {
    const loads: number[][] = [];
    const id = batched(
      async (keys: number[]) => {
        loads.push(keys);
        return keys;
      },
      { windowMs: 30, maxBatch: 4 },
    );
    const first = id(1);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 5));
    const second = id(2);
    expect(loads).toEqual([]);
    expect(await Promise.all([first, second])).toEqual([1, 2]);
    expect(loads).toEqual([[1, 2]]);

    // A full batch goes at once: with a window far longer than the test's own timeout, only that can settle it.
    const slow = batched(async (keys: number[]) => keys, { windowMs: 60_000, maxBatch: 4 });
    const settled = await Promise.race([
      Promise.all([5, 6, 7, 8].map(slow)),
      new Promise((r) => setTimeout(() => r('waited'), 2_000)),
    ]);
    expect(settled).toEqual([5, 6, 7, 8]);
  });
});
