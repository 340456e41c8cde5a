/**
 * Coalesces lookups into as few loads as the load's own round trip allows:
 * lookups made within one window (or, without one, one turn of the event loop)
 * go in one load, and lookups made while a load is out wait for it and then go
 * together in the next one. Under a burst of handshakes one Redis MGET and one
 * PostgreSQL query then serve every socket whose handshake arrived during the
 * window or the previous round trip, instead of one round trip each (each
 * write to a peer costs a syscall and a wake-up of the peer, the largest item
 * in the handshake's CPU profile). A window of a few milliseconds matters at
 * steady rates, where handshakes arrive about one per loop turn.
 */
/**
 * The window of the handshake's lookups (revocation entry, user row), measured in
 * the bench's handshake phase. It applies only while lookups keep coming, so a
 * lone handshake on an idle node does not wait for it.
 */
export const lookupWindowMs = 5;

export interface BatchOptions {
  /** most keys in one load (default 500) */
  maxBatch?: number;
  /**
   * How long the first lookup of a batch waits for others while the batcher is
   * busy, i.e. a load started within the last `busyMs`; otherwise (and by
   * default, 0) it waits only until the end of the loop turn.
   */
  windowMs?: number;
  /** default 100 ms */
  busyMs?: number;
}

export function batched<K, V>(load: (keys: K[]) => Promise<V[]>, options: BatchOptions = {}): (key: K) => Promise<V> {
  const { maxBatch = 500, windowMs = 0, busyMs = 100 } = options;
  let queue: { key: K; resolve: (v: V) => void; reject: (err: unknown) => void }[] = [];
  let cancelWait: (() => void) | undefined;
  let inFlight = 0;
  let lastLoadAt = -Infinity;

  function schedule(): void {
    if (windowMs > 0 && performance.now() - lastLoadAt < busyMs) {
      const timer = setTimeout(flush, windowMs);
      cancelWait = () => clearTimeout(timer);
    } else {
      const immediate = setImmediate(flush);
      cancelWait = () => clearImmediate(immediate);
    }
  }

  function flush(): void {
    cancelWait?.();
    cancelWait = undefined;
    if (inFlight > 0 || queue.length === 0) return;
    const batch = queue;
    queue = [];
    lastLoadAt = performance.now();
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

  return (key) =>
    new Promise<V>((resolve, reject) => {
      queue.push({ key, resolve, reject });
      if (inFlight > 0) return; // goes with the next load, as soon as this one returns
      if (queue.length >= maxBatch) flush();
      else if (cancelWait === undefined) schedule();
    });
}
