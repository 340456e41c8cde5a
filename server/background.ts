/**
 * Work begun off a request's path (its answer does not wait for it), kept track of so that a shutdown, or a test,
 * can wait until what was begun has ended.
 */
export interface BackgroundWork {
  /** Tracks `work` until it settles; returns it. */
  add<T>(work: Promise<T>): Promise<T>;
  /** Resolves when everything added so far, and anything added meanwhile, has settled. */
  drain(): Promise<void>;
}

export function backgroundWork(): BackgroundWork {
  const pending = new Set<Promise<unknown>>();
  return {
    add(work) {
      pending.add(work);
      work.then(
        () => pending.delete(work),
        () => pending.delete(work),
      );
      return work;
    },
    async drain() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}
