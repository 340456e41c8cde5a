/**
 * Coalesces lookups into as few loads as the load's own round trip allows:
 * lookups made in one turn of the event loop (or, with a window, within it)
 * go in one load, and lookups made while a load is out wait for it and then go
 * together in the next one. Under a burst of handshakes one Redis MGET and one
 * PostgreSQL query then serve every socket whose handshake arrived during the
 * window or the previous round trip, instead of one round trip each (each
 * write to a peer costs a syscall and a wake-up of the peer, the largest item
 * in the handshake's CPU profile). A window of a few milliseconds matters at
 * steady rates, where handshakes arrive about one per loop turn.
 */

/**
 * When a batch goes out: at the end of the loop turn in which its first request
 * came; but a request alone at the end of its turn waits up to `windowMs` for
 * company when requests come often enough that company is likely in that
 * time (at least one expected, from the arrivals of about the last
 * `rateSpanMs`), so that a steady stream of requests, about one per loop turn,
 * still makes batches. At a low rate a lone request does not wait: company
 * would rarely come, and every request would pay the window. Requests that
 * came together, or a full batch, do not wait either.
 */
export interface WindowOptions {
  /** how long a lone request may wait for others (default 0: never) */
  windowMs?: number;
  /** the span over which the arrival rate is measured (default 100 ms) */
  rateSpanMs?: number;
  /** with this many waiting, the batch goes at once (default: no limit) */
  maxBatch?: number;
}

export interface FlushScheduler {
  /**
   * Call for every request that comes: flushes at once when `maxBatch` wait,
   * else schedules `flush` unless it is scheduled already. `flush` may find it
   * cannot go yet (a load is out) and leave the requests waiting.
   */
  schedule(): void;
  /** Call when a batch goes out: cancels a scheduled flush. */
  flushing(): void;
}

/** `waiting()` tells how many requests wait for the next batch. */
export function flushScheduler(flush: () => void, waiting: () => number, { windowMs = 0, rateSpanMs = 100, maxBatch = Infinity }: WindowOptions = {}): FlushScheduler {
  let cancel: (() => void) | undefined;
  const rate = arrivalRate(rateSpanMs);
  const fire = () => {
    cancel = undefined;
    flush();
  };
  const endOfTurn = () => {
    cancel = undefined;
    if (windowMs > 0 && waiting() === 1 && rate.perMs(performance.now()) * windowMs >= 1) {
      const timer = setTimeout(fire, windowMs);
      cancel = () => clearTimeout(timer);
    } else {
      flush();
    }
  };
  return {
    schedule() {
      if (windowMs > 0) rate.arrived(performance.now());
      if (waiting() >= maxBatch) return flush();
      if (cancel) return;
      const immediate = setImmediate(endOfTurn);
      cancel = () => clearImmediate(immediate);
    },
    flushing() {
      cancel?.();
      cancel = undefined;
    },
  };
}

/**
 * Arrivals per millisecond over about the last `spanMs`: the count of the
 * current span plus the previous span's, weighted by how much of it is still
 * within `spanMs` of now.
 */
function arrivalRate(spanMs: number) {
  let start = -Infinity;
  let current = 0;
  let previous = 0;
  const roll = (now: number) => {
    if (now - start < spanMs) return;
    previous = now - start < 2 * spanMs ? current : 0;
    start = now - start < 2 * spanMs ? start + spanMs : now;
    current = 0;
  };
  return {
    arrived(now: number) {
      roll(now);
      current++;
    },
    perMs(now: number) {
      roll(now);
      return (current + previous * Math.max(0, 1 - (now - start) / spanMs)) / spanMs;
    },
  };
}

/** `maxBatch` (default 500) is also the most keys in one load. */
export type BatchOptions = WindowOptions;

export function batched<K, V>(load: (keys: K[]) => Promise<V[]>, options: BatchOptions = {}): (key: K) => Promise<V> {
  const { maxBatch = 500 } = options;
  let queue: { key: K; resolve: (v: V) => void; reject: (err: unknown) => void }[] = [];
  let inFlight = 0;
  const scheduler = flushScheduler(flush, () => queue.length, { ...options, maxBatch });

  function flush(): void {
    if (inFlight > 0 || queue.length === 0) return;
    scheduler.flushing();
    const batch = queue;
    queue = [];
    for (let i = 0; i < batch.length; i += maxBatch) {
      const part = batch.slice(i, i + maxBatch);
      inFlight++;
      Promise.resolve()
        .then(() => load(part.map((q) => q.key)))
        .then(
          (values) => part.forEach((q, k) => q.resolve(values[k] as V)),
          (err: unknown) => part.forEach((q) => q.reject(err)),
        )
        .finally(() => {
          if (--inFlight === 0) flush();
        });
    }
  }

  // A lookup made while a load is out goes with the next load, as soon as this one returns (`flush` waits for it).
  return (key) =>
    new Promise<V>((resolve, reject) => {
      queue.push({ key, resolve, reject });
      scheduler.schedule();
    });
}
