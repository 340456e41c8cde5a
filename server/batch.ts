/**
 * Coalesces lookups into as few loads as the load's own round trip allows:
 * lookups made within one window (or, without one, one turn of the event loop)
 * go in one load, and lookups made while a load is out wait for it and then go
 * together in the next one. Under a burst of handshakes one Redis MGET and one
 * PostgreSQL query then serve every socket whose handshake arrived during the
 * window or the previous round trip, instead of one round trip each (each
 * write to a peer costs a syscall and a wake-up of the peer, the largest item
 * in the handshake's CPU profile). A window of a few milliseconds matters at
 * steady rates, where handshakes arrive about one per loop turn: at 1,000/s a
 * 3 ms window makes batches of ~3 where one loop turn makes batches of ~1.
 */
/**
 * The window of the handshake's lookups (revocation entry, user row). Measured in
 * the bench's handshake phase; it costs a lone handshake that much latency.
 */
export const lookupWindowMs = 2;

export interface BatchOptions {
  /** most keys in one load (default 500) */
  maxBatch?: number;
  /** how long the first lookup of a batch waits for others (default 0: until the end of the loop turn) */
  windowMs?: number;
}

export function batched<K, V>(load: (keys: K[]) => Promise<V[]>, options: BatchOptions = {}): (key: K) => Promise<V> {
  const { maxBatch = 500, windowMs = 0 } = options;
  let queue: { key: K; resolve: (v: V) => void; reject: (err: unknown) => void }[] = [];
  let timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  let inFlight = 0;

  function flush(): void {
    if (timer !== undefined) {
      if (windowMs > 0) clearTimeout(timer as NodeJS.Timeout);
      else clearImmediate(timer as NodeJS.Immediate);
      timer = undefined;
    }
    if (inFlight > 0 || queue.length === 0) return;
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

  return (key) =>
    new Promise<V>((resolve, reject) => {
      queue.push({ key, resolve, reject });
      if (inFlight > 0) return; // goes with the next load, as soon as this one returns
      if (queue.length >= maxBatch) flush();
      else if (timer === undefined) timer = windowMs > 0 ? setTimeout(flush, windowMs) : setImmediate(flush);
    });
}
