/**
 * RT-6: the per-user event limits, in fixed windows of a minute (as
 * rate-limiter-flexible counts them for the HTTP limits), held across nodes
 * through counters in Redis.
 *
 * Every socket event takes a count, so a count must not cost a round trip:
 * each write to Redis is a syscall and a wake-up of Redis, which under load
 * cost more than the event's own work (bench/README.md, "Redis commands").
 * So a node decides on its own counts and syncs them: it counts each event
 * at once against what it last learnt of the user's window (the other nodes'
 * events included) plus its own events since, and sends what it counted to
 * Redis in one script call for all its users, at most `syncMs` later (sooner
 * for a user who sent `syncAfter` events since the last sync), learning the
 * totals back. On one node the limits are exact; across nodes a user can get
 * past a limit by at most the events the other nodes took before their next
 * sync. While Redis is away, each node counts alone.
 */
import { appError, ErrorCode } from '../errors.js';
import type { LimitScope } from '../hooks.js';
import type { Redis } from '../redis.js';

/**
 * KEYS: the counters; ARGV: the window (ms), then one increment per key. Returns, per key, the count and the ms
 * left in its window.
 */
const countScript = `
local out = {}
for i = 1, #KEYS do
  local n = redis.call('INCRBY', KEYS[i], ARGV[i + 1])
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    ttl = tonumber(ARGV[1])
  end
  out[2 * i - 1] = n
  out[2 * i] = ttl
end
return out`;

/** Defined on the command client when it is made (`createCommandClient`), like the stream buffer's. */
export const limiterScripts = { samCountEvents: { lua: countScript } };

type WithCount = Redis & { samCountEvents(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<number[]> };

export interface EventLimiter {
  /**
   * Counts one event against every scope given, all at once, on this node (no round trip: synchronous); throws
   * RATE_LIMITED for the first scope, in the order given, that is over its limit (`details.flooding` when the
   * socket should be dropped).
   */
  consume(userId: string, scopes: readonly LimitScope[]): void;
  /** Sends the counts not yet synced (tests, shutdown; otherwise the timer does). Never rejects: counts Redis did not take stay on this node. */
  sync(): Promise<void>;
  /** Stops the sync timer. */
  close(): void;
}

/** One user's counter of one scope, as this node knows it. */
interface Counter {
  /** its key in Redis */
  key: string;
  /** the window's count when this node last synced (every node's events) */
  known: number;
  /** this node's events since, not yet sent */
  pending: number;
  /** this node's events in a sync that has not answered yet */
  sending: number;
  /** when the window ends (`performance.now()` clock) */
  endsAt: number;
}

const WINDOW_MS = 60_000;

export function createEventLimiter(options: {
  redis: Redis;
  eventsPerMinute: number;
  chatPerMinute: number;
  /** the longest a count waits before it is synced (default 100 ms) */
  syncMs?: number;
  /** a user's events since the last sync that make the next sync go at once (default 20) */
  syncAfter?: number;
}): EventLimiter {
  const redis = options.redis as WithCount;
  const { syncMs = 100, syncAfter = 20 } = options;
  const points: Record<LimitScope, number> = { socket: options.eventsPerMinute, chat: options.chatPerMinute };
  const keyPrefixes: Record<LimitScope, string> = { socket: 'rl:sock', chat: 'rl:chat' };
  /**
   * Each scope's counters by user id: an event looks its counter up by the id the socket holds, whose hash the
   * string keeps, rather than by a key string made and hashed anew for every event.
   */
  const counters: Record<LimitScope, Map<string, Counter>> = { socket: new Map(), chat: new Map() };
  /** the counters with events not yet sent */
  const dirty = new Set<Counter>();
  // Counters of windows that ended go once a window (not on every sync, which sees only the dirty ones).
  const sweeper = setInterval(() => {
    const now = performance.now();
    for (const byUser of Object.values(counters)) {
      for (const [userId, c] of byUser) if (now >= c.endsAt && c.pending === 0 && c.sending === 0) byUser.delete(userId);
    }
  }, WINDOW_MS);
  sweeper.unref();
  let timer: NodeJS.Timeout | undefined;
  let soon: NodeJS.Immediate | undefined;
  let syncing: Promise<void> | undefined;

  function schedule(now: boolean): void {
    if (now && !soon && !syncing) {
      soon = setImmediate(() => void sync());
    } else if (!timer) {
      timer = setTimeout(() => void sync(), syncMs);
      timer.unref();
    }
  }

  function sync(): Promise<void> {
    if (syncing) return syncing.then(() => sync());
    clearTimeout(timer);
    timer = undefined;
    if (soon) clearImmediate(soon);
    soon = undefined;
    const batch: [Counter, number][] = [];
    for (const c of dirty) {
      batch.push([c, c.pending]);
      c.sending += c.pending;
      c.pending = 0;
    }
    dirty.clear();
    if (batch.length === 0) return Promise.resolve();
    // While Redis is away, each node counts alone; the counts are dropped, not replayed, when it returns.
    const sent = redis.status === 'ready' ? redis.samCountEvents(batch.length, ...batch.map(([c]) => c.key), WINDOW_MS, ...batch.map(([, n]) => n)) : Promise.reject(new Error('Redis is away'));
    syncing = sent.then(
      (flat) => {
        const at = performance.now();
        batch.forEach(([c, n], i) => {
          c.sending -= n;
          c.known = Number(flat[2 * i]);
          c.endsAt = at + Number(flat[2 * i + 1]);
        });
      },
      () => {
        for (const [c, n] of batch) {
          c.sending -= n;
          c.known += n;
        }
      },
    );
    return syncing.finally(() => {
      syncing = undefined;
      if (dirty.size > 0) schedule(false);
    });
  }

  /** Counts one event of `scope`; returns the window's count with it, and the ms left in the window. */
  function count(scope: LimitScope, userId: string): { consumed: number; msLeft: number } {
    const now = performance.now();
    const byUser = counters[scope];
    let c = byUser.get(userId);
    if (!c || (now >= c.endsAt && c.sending === 0)) {
      // A window that ended takes its unsent events with it.
      if (c) dirty.delete(c);
      c = { key: `${keyPrefixes[scope]}:${userId}`, known: 0, pending: 0, sending: 0, endsAt: now + WINDOW_MS };
      byUser.set(userId, c);
    }
    c.pending++;
    dirty.add(c);
    schedule(c.pending >= syncAfter);
    return { consumed: c.known + c.sending + c.pending, msLeft: c.endsAt - now };
  }

  return {
    consume(userId, scopes) {
      // A chat:send counts against both scopes (RT-6) whatever either says, so both are counted.
      const counts = scopes.map((scope) => count(scope, userId));
      counts.forEach(({ consumed, msLeft }, i) => {
        const scope = scopes[i]!;
        if (consumed <= points[scope]) return;
        throw appError(ErrorCode.RATE_LIMITED, {
          retryAfterMs: Math.max(0, Math.round(msLeft)),
          details: { scope, flooding: consumed > 2 * points[scope] },
        });
      });
    },
    sync,
    close() {
      clearInterval(sweeper);
      clearTimeout(timer);
      if (soon) clearImmediate(soon);
      timer = undefined;
      soon = undefined;
    },
  };
}
