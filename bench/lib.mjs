// Shared helpers for the bench: clocks, HDR histograms, bounded waits.
import { readFileSync } from 'node:fs';
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
/** Extra node flags from an environment variable (`BENCH_SAM_NODE_ARGS` and the like), split on spaces. */
export const nodeArgsFrom = (name) => (process.env[name] ?? '').split(' ').filter(Boolean);

/** User + system CPU ticks (1/100 s, all threads) from the text of a `/proc/<pid>/stat` file. */
export function statTicks(text) {
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

export async function waitFor(fn, { timeoutMs, intervalMs = 200 }) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > end) return v;
    await sleep(intervalMs);
  }
}

/** The machine's idle and total CPU ticks (all cores) from /proc/stat; busy share = 1 − Δidle / Δtotal. */
export function cpuTimes() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] ?? 0);
  return { idle, total: f.reduce((a, b) => a + b, 0) };
}

/**
 * Waits until the machine is quiet (busy < `busyBelow` of all cores over 500 ms,
 * at most `maxMs`), so that a phase does not inherit the previous one's tail
 * (closing thousands of sockets keeps server and generators busy for seconds).
 * Returns how long it waited and the last busy share.
 */
export async function settle({ busyBelow = 0.25, maxMs = 20_000 } = {}) {
  const start = Date.now();
  let busy = 1;
  while (Date.now() - start < maxMs) {
    const a = cpuTimes();
    await sleep(500);
    const b = cpuTimes();
    busy = 1 - (b.idle - a.idle) / Math.max(1, b.total - a.total);
    if (busy < busyBelow) break;
  }
  return { waitedMs: Date.now() - start, busy: Math.round(busy * 100) / 100 };
}
