import { describe, expect, it } from 'vitest';
import { RecentWindow } from './metrics.js';

describe('RecentWindow (the ops view’s event p50/p99)', () => {
  it('gives p50, p99 and the last second’s count of the last 10 s only', () => {
    let now = 0;
    const w = new RecentWindow(1_000, () => now);
    for (let i = 0; i < 50; i++) w.push(1_000); // old: out of the window by the time we ask
    now = 5_000;
    for (let i = 1; i <= 100; i++) {
      now += 50; // 100 events over 5 s
      w.push(i);
    }
    now = 10_050; // the 1,000 ms events are just over 10 s old; the last second holds the last 20 events
    expect(w.quantiles()).toEqual({ p50: 51, p99: 100, perSecond: 20 });
  });

  it('keeps the newest samples when full, and says 0 when nothing happened for 10 s', () => {
    let now = 0;
    const w = new RecentWindow(10, () => now);
    for (let i = 1; i <= 25; i++) w.push(i); // only 16…25 remain
    expect(w.quantiles()).toEqual({ p50: 21, p99: 25, perSecond: 10 });
    now = 10_001;
    expect(w.quantiles()).toEqual({ p50: 0, p99: 0, perSecond: 0 });
  });
});
