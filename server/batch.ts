/**
 * Coalesces lookups made in the same turn of the event loop into one call:
 * under a burst of handshakes, one Redis MGET and one PostgreSQL query serve
 * every socket whose handshake the loop read in that turn, instead of one round
 * trip each (each write to a peer costs a syscall and a wake-up of the peer,
 * the largest item in the handshake's CPU profile). Alone, a lookup waits only
 * until the end of the current turn.
 */
export function batched<K, V>(load: (keys: K[]) => Promise<V[]>, maxBatch = 500): (key: K) => Promise<V> {
  let queue: { key: K; resolve: (v: V) => void; reject: (err: unknown) => void }[] = [];

  function flush(): void {
    const batch = queue;
    queue = [];
    for (let i = 0; i < batch.length; i += maxBatch) {
      const part = batch.slice(i, i + maxBatch);
      Promise.resolve()
        .then(() => load(part.map((q) => q.key)))
        .then(
        (values) => part.forEach((q, k) => q.resolve(values[k] as V)),
        (err: unknown) => part.forEach((q) => q.reject(err)),
      );
    }
  }

  return (key) =>
    new Promise<V>((resolve, reject) => {
      if (queue.length === 0) setImmediate(flush);
      queue.push({ key, resolve, reject });
    });
}
