/**
 * Live sockets before password hashing. argon2 runs on libuv's thread pool,
 * one hash at a time taking a whole core for ~30 ms; during a burst of logins
 * that core is gone, and the sockets' events (and PostgreSQL and Redis, which
 * they wait on) share what is left. On Linux this gives libuv's pool threads
 * the lowest CPU priority (nice 19): when a core is free the hashes run as
 * fast as before, when not the sockets go first.
 *
 * Only the pool's threads: V8's background thread marks the heap for the
 * garbage collector, and at nice 19 its work fell back on the main thread
 * (fan-out p99 at 15,000 sockets, 1,000/s: 12–290 ms → 91–279 ms). libuv
 * starts all `UV_THREADPOOL_SIZE` (default 4) pool threads at once, on first
 * use, after V8's and Node's own; so once a pool operation has completed, the
 * pool is the newest threads of the process (`bench/README.md`, "Third pass").
 */
import fs from 'node:fs';
import os from 'node:os';

/** The lowest CPU priority Linux has. */
export const POOL_NICE = 19;

/** This process's threads, oldest first (by start time, then id: ids can wrap around). */
function threadsByAge(): number[] {
  const started = (tid: number) => {
    try {
      return Number(fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]);
    } catch {
      return Number.MAX_SAFE_INTEGER; // ended meanwhile
    }
  };
  return fs
    .readdirSync('/proc/self/task')
    .map((name) => ({ tid: Number(name), at: started(Number(name)) }))
    .sort((a, b) => a.at - b.at || a.tid - b.tid)
    .map((t) => t.tid);
}

/** libuv's pool size, as libuv reads it (1..1024, default 4). */
export function poolSize(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number.parseInt(env.UV_THREADPOOL_SIZE ?? '', 10);
  return Number.isFinite(n) && n > 0 ? Math.min(n, 1024) : 4;
}

/**
 * Lowers libuv's pool threads; returns their thread ids (none off Linux).
 * Call at startup, before anything starts threads of its own (worker_threads).
 */
export async function lowerPoolThreads(): Promise<number[]> {
  if (process.platform !== 'linux') return [];
  await fs.promises.access('/proc/self/task'); // a pool operation: the pool exists once it is done
  const pool = threadsByAge().slice(-poolSize());
  for (const tid of pool) {
    try {
      // On Linux, setpriority(PRIO_PROCESS, tid) sets the priority of that one thread.
      os.setPriority(tid, POOL_NICE);
    } catch {
      // not permitted here: the hashes keep the default priority
    }
  }
  return pool;
}
