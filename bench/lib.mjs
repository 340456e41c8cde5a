// Shared helpers for the bench: clocks, HDR histograms, bounded waits.
import hdr from 'hdr-histogram-js';

/** Epoch milliseconds with sub-millisecond precision, comparable across processes on one machine. */
export const epochMs = () => performance.timeOrigin + performance.now();

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A latency histogram in microseconds, 1 µs .. 1 h, 3 significant digits. */
export const newHist = () =>
  hdr.build({ bitBucketSize: 'packed', lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });

/** Records a latency given in milliseconds. */
export const recordMs = (hist, ms) => hist.recordValue(Math.max(1, Math.min(3_600_000_000, Math.round(ms * 1000))));

export const encodeHist = (hist) => hdr.encodeIntoCompressedBase64(hist);

/** Merges encoded histograms (from several generators) into one. */
export function mergeHists(encoded) {
  const out = newHist();
  for (const e of encoded) if (e) out.add(hdr.decodeFromCompressedBase64(e, 'packed'));
  return out;
}

/** Percentiles in milliseconds (null when empty). */
export function summary(hist) {
  if (!hist || hist.totalCount === 0) return { count: 0, p50: null, p99: null, p999: null, max: null };
  const ms = (v) => Math.round(v / 10) / 100;
  return {
    count: hist.totalCount,
    p50: ms(hist.getValueAtPercentile(50)),
    p99: ms(hist.getValueAtPercentile(99)),
    p999: ms(hist.getValueAtPercentile(99.9)),
    max: ms(hist.maxValue),
  };
}

/** Percentile of a plain array of numbers. */
export function pct(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Polls `fn` until it returns truthy or `timeoutMs` passes; returns the last value. */
export async function waitFor(fn, { timeoutMs, intervalMs = 200 }) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > end) return v;
    await sleep(intervalMs);
  }
}
