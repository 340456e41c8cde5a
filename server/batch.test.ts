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

  it('with a window, a lookup alone in its turn waits for the next when lookups come often enough', async () => {
    const loads: number[][] = [];
    const id = batched(
      async (keys: number[]) => {
        loads.push(keys);
        return keys;
      },
      { windowMs: 30, maxBatch: 8, rateSpanMs: 200 },
    );
    expect(await id(0)).toBe(0); // the first goes at the end of its turn
    expect(await Promise.all([1, 2, 3, 4, 5, 6].map(id))).toEqual([1, 2, 3, 4, 5, 6]); // in company: at once
    // 7 lookups in 200 ms: more than one expected in 30 ms
    const first = id(7); // alone: waits for the window
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 5));
    const second = id(8);
    expect(loads).toEqual([[0], [1, 2, 3, 4, 5, 6]]);
    expect(await Promise.all([first, second])).toEqual([7, 8]);
    expect(loads).toEqual([[0], [1, 2, 3, 4, 5, 6], [7, 8]]);
  });

  it('with a window, a lookup does not wait at a low rate, in company, or when the batch is full', async () => {
    // The window is far longer than `never` allows: only not waiting can settle these.
    const never = (p: Promise<unknown>) => Promise.race([p, new Promise((r) => setTimeout(() => r('waited'), 300))]);
    const slow = batched(async (keys: number[]) => keys, { windowMs: 1_000, maxBatch: 4, rateSpanMs: 100_000 });
    for (const k of [1, 2, 3]) expect(await never(slow(k))).toBe(k); // 1 to 3 lookups in 100 s: none expected in 1 s
    expect(await never(Promise.all(Array.from({ length: 120 }, (_, i) => slow(i))))).toHaveLength(120); // in company
    // 123 lookups in 100 s: more than one expected in 1 s
    expect(await never(Promise.all([10, 11].map(slow)))).toEqual([10, 11]); // in company: at once
    const lone = slow(5);
    expect(await never(lone)).toBe('waited'); // alone: waits for the window…
    expect(await never(Promise.all([lone, ...[6, 7, 8].map(slow)]))).toEqual([5, 6, 7, 8]); // …until the batch is full
  });
});
