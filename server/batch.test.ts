import { describe, expect, it } from 'vitest';
import { batched } from './batch.js';

/** One turn of the event loop. */
const turn = () => new Promise((r) => setImmediate(r));
/** `p`'s value, or 'waited' if it has not settled within 2 s: a window far longer than that shows as 'waited'. */
const never = (p: Promise<unknown>) => Promise.race([p, new Promise((r) => setTimeout(() => r('waited'), 2_000))]);

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

  it('with a window, while busy, a lookup alone in its turn waits for the next; idle, in company or full, none waits', async () => {
    const loads: number[][] = [];
    const id = batched(
      async (keys: number[]) => {
        loads.push(keys);
        return keys;
      },
      { windowMs: 30, maxBatch: 4, busyMs: 200 },
    );
    expect(await id(0)).toBe(0); // idle: at the end of the turn
    await new Promise((r) => setImmediate(r)); // the load has ended
    const first = id(1); // busy now (a load started just before): waits for the window
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 5));
    const second = id(2);
    expect(loads).toEqual([[0]]);
    expect(await Promise.all([first, second])).toEqual([1, 2]);
    expect(loads).toEqual([[0], [1, 2]]);

    // With a window far longer than the test's own timeout, only not waiting can settle these (`never`).
    const slow = batched(async (keys: number[]) => keys, { windowMs: 60_000, maxBatch: 4, busyMs: 50 });
    expect(await never(slow(1))).toBe(1); // idle
    expect(await never(Promise.all([2, 3].map(slow)))).toEqual([2, 3]); // busy, but not alone in its turn
    const lone = slow(5); // busy and alone: waits for the window…
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(await never(Promise.all([lone, ...[6, 7, 8].map(slow)]))).toEqual([5, 6, 7, 8]); // …until the batch is full
    await new Promise((r) => setTimeout(r, 80));
    expect(await never(slow(9))).toBe(9); // idle again
  });

  it('with spacing, lookups coming soon after a load went wait until the spacing ends, unless enough wait', async () => {
    const loads: { keys: number[]; at: number }[] = [];
    const id = batched(
      async (keys: number[]) => {
        loads.push({ keys, at: performance.now() });
        return keys;
      },
      { spacing: { ms: 200, below: 3 } },
    );
    const first = id(1); // no batch went before: not held
    await turn();
    const second = id(2); // 1's load went (and returned) just now: held until 200 ms after it went
    await turn();
    await turn();
    await new Promise((r) => setTimeout(r, 50));
    expect(loads.map((l) => l.keys)).toEqual([[1]]);
    expect(await Promise.all([first, second])).toEqual([1, 2]);
    expect(loads.map((l) => l.keys)).toEqual([[1], [2]]);
    // a timer may fire a little early: the hold is checked for its order of magnitude, not to the millisecond
    expect(loads[1]!.at - loads[0]!.at).toBeGreaterThan(150);

    // While held, `below` lookups waiting go at once (a spacing far longer than the test's timeout proves it),
    // whether they came while the last load was out or after it returned.
    let release: () => void = () => undefined;
    const loads2: number[][] = [];
    const slow = batched(
      async (keys: number[]) => {
        loads2.push(keys);
        if (loads2.length === 1) await new Promise<void>((r) => (release = r));
        return keys;
      },
      { spacing: { ms: 60_000, below: 3 } },
    );
    const one = slow(1); // goes, and stays out
    await turn();
    await turn();
    const more = [slow(2), slow(3)]; // while it is out
    await turn();
    release();
    expect(await never(one)).toBe(1);
    await turn();
    expect(loads2).toEqual([[1]]); // 1 returned; two wait: held
    more.push(slow(4)); // three: the hold ends
    expect(await never(Promise.all(more))).toEqual([2, 3, 4]);
    expect(loads2).toEqual([[1], [2, 3, 4]]);
  });
});
