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
 * came; but a request alone at the end of its turn, while busy (a batch went out
 * within the last `busyMs`), waits up to `windowMs` for company, so that a
 * steady stream of requests, about one per loop turn, still makes batches.
 * Requests that came together, or the first of a burst after a quiet spell,
 * do not wait.
 */
export interface WindowOptions {
  /** how long a lone request waits for others while busy (default 0: never) */
  windowMs?: number;
  /** default 100 ms */
  busyMs?: number;
  /** with this many waiting, the batch goes at once (default: no limit) */
  maxBatch?: number;
  /**
   * Batches at most one per `ms` unless `below` or more requests wait:
   * requests that come (or wait when a batch returns) less than `ms` after
   * the last batch went wait for the rest of it, so that under load a batch
   * carries a window's requests rather than a round trip's (default: the next
   * batch goes as soon as the last returns).
   */
  spacing?: { ms: number; below: number };
}

export interface FlushScheduler {
  /** Call when a request comes: flushes at once when `maxBatch` wait, else schedules `flush` unless it is scheduled already. */
  schedule(): void;
  /** Call when a batch goes out: cancels a scheduled flush and marks the scheduler busy. */
  flushing(): void;
  /**
   * Call when the batches out have returned (nothing is scheduled while one is out): flushes the requests that
   * wait now, or holds them (`spacing`).
   */
  returned(): void;
}

/** `waiting()` tells how many requests wait for the next batch. */
export function flushScheduler(flush: () => void, waiting: () => number, { windowMs = 0, busyMs = 100, maxBatch = Infinity, spacing }: WindowOptions = {}): FlushScheduler {
  let cancel: (() => void) | undefined;
  let lastFlushAt = -Infinity;
  /** requests wait for the spacing to end (a timer is set) */
  let holding = false;
  const fire = () => {
    cancel = undefined;
    holding = false;
    flush();
  };
  /** With `spacing`, fewer than `below` waiting and the last batch gone less than `spacing.ms` ago: waits for the rest of it. */
  const held = (): boolean => {
    if (!spacing || waiting() >= spacing.below) return false;
    const left = lastFlushAt + spacing.ms - performance.now();
    if (left <= 0) return false;
    holding = true;
    const timer = setTimeout(fire, left);
    cancel = () => clearTimeout(timer);
    return true;
  };
  const endOfTurn = () => {
    cancel = undefined;
    if (held()) return;
    if (windowMs > 0 && waiting() === 1 && performance.now() - lastFlushAt < busyMs) {
      const timer = setTimeout(fire, windowMs);
      cancel = () => clearTimeout(timer);
    } else {
      flush();
    }
  };
  return {
    schedule() {
      if (waiting() >= maxBatch || (holding && waiting() >= spacing!.below)) return flush();
      if (cancel) return;
      const immediate = setImmediate(endOfTurn);
      cancel = () => clearImmediate(immediate);
    },
    flushing() {
      cancel?.();
      cancel = undefined;
      holding = false;
      lastFlushAt = performance.now();
    },
    returned() {
      if (waiting() > 0 && !held()) flush();
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
          if (--inFlight === 0) scheduler.returned();
        });
    }
  }

  return (key) =>
    new Promise<V>((resolve, reject) => {
      queue.push({ key, resolve, reject });
      if (inFlight > 0) return; // goes with the next load, as soon as this one returns
      scheduler.schedule();
    });
}
