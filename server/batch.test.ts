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
    }, 2);
    expect(await Promise.all([1, 2, 3, 4, 5].map(id))).toEqual([1, 2, 3, 4, 5]);
    expect(sizes).toEqual([2, 2, 1]);
  });
});
