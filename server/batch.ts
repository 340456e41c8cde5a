/**
 * Coalesces lookups into as few loads as the load's own round trip allows:
 * lookups made in one turn of the event loop go in one load, and lookups made
 * while a load is out wait for it and then go together in the next one. Under
 * a burst of handshakes one Redis MGET and one PostgreSQL query then serve
 * every socket whose handshake arrived during the previous round trip, instead
 * of one round trip each (each write to a peer costs a syscall and a wake-up
 * of the peer, the largest item in the handshake's CPU profile). Alone, a
 * lookup waits only until the end of the current turn.
 */
export function batched<K, V>(load: (keys: K[]) => Promise<V[]>, maxBatch = 500): (key: K) => Promise<V> {
  let queue: { key: K; resolve: (v: V) => void; reject: (err: unknown) => void }[] = [];
  let scheduled = false;
  let inFlight = 0;

  function flush(): void {
    scheduled = false;
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
      if (!scheduled && inFlight === 0) {
        scheduled = true;
        setImmediate(flush);
      }
    });
}
