/**
 * RT-6: the per-user event limits, counted in Redis so that they hold across
 * nodes, in fixed windows of a minute (as rate-limiter-flexible counts them for
 * the HTTP limits). Every socket event takes a count, so the counts of the
 * events that arrive in one loop turn, or while a count is out, go to Redis in
 * one script call rather than one command each: each command is a write to
 * Redis and a wake-up of Redis, which under load cost more than the count
 * itself (bench/README.md, "Redis commands"). While Redis is away, the same
 * limits are counted per process (rate-limiter-flexible's memory limiter).
 */
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { appError, ErrorCode } from '../errors.js';
import { batched } from '../batch.js';
import type { LimitScope } from '../hooks.js';
import type { Redis } from '../redis.js';

/** KEYS: the counters; ARGV[1]: the window (ms). Returns, per key, the count and the ms left in its window. */
const countScript = `
local out = {}
for i = 1, #KEYS do
  local n = redis.call('INCR', KEYS[i])
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
   * Counts one event against every scope given, all at once; throws RATE_LIMITED for the first scope, in the
   * order given, that is over its limit (`details.flooding` when the socket should be dropped).
   */
  consume(userId: string, scopes: readonly LimitScope[]): Promise<void>;
}

interface Count {
  consumed: number;
  msLeft: number;
}

const WINDOW_SECONDS = 60;

export function createEventLimiter(options: { redis: Redis; eventsPerMinute: number; chatPerMinute: number }): EventLimiter {
  const redis = options.redis as WithCount;
  const points: Record<LimitScope, number> = { socket: options.eventsPerMinute, chat: options.chatPerMinute };
  const keyPrefixes: Record<LimitScope, string> = { socket: 'rl:sock', chat: 'rl:chat' };
  const inMemory = (scope: LimitScope) => new RateLimiterMemory({ keyPrefix: keyPrefixes[scope], points: points[scope], duration: WINDOW_SECONDS });
  const memory: Record<LimitScope, RateLimiterMemory> = { socket: inMemory('socket'), chat: inMemory('chat') };

  // A lone event while busy waits up to 2 ms for company, as the handshake's revocation lookup does (batch.ts).
  const countInRedis = batched(
    async (keys: string[]): Promise<Count[]> => {
      const flat = await redis.samCountEvents(keys.length, ...keys, WINDOW_SECONDS * 1000);
      return keys.map((_, i) => ({ consumed: Number(flat[2 * i]), msLeft: Number(flat[2 * i + 1]) }));
    },
    { windowMs: 2 },
  );

  const countInMemory = (scope: LimitScope, userId: string): Promise<Count> =>
    memory[scope].consume(userId).then(
      (res) => ({ consumed: res.consumedPoints, msLeft: res.msBeforeNext }),
      (rejection: unknown) => {
        if (rejection instanceof RateLimiterRes) return { consumed: rejection.consumedPoints, msLeft: rejection.msBeforeNext };
        throw rejection;
      },
    );

  const count = (scope: LimitScope, userId: string): Promise<Count> =>
    redis.status === 'ready' ? countInRedis(`${keyPrefixes[scope]}:${userId}`).catch(() => countInMemory(scope, userId)) : countInMemory(scope, userId);

  return {
    async consume(userId, scopes) {
      // A chat:send counts against both scopes (RT-6) whatever either says, so both are counted.
      const counts = await Promise.all(scopes.map((scope) => count(scope, userId)));
      counts.forEach(({ consumed, msLeft }, i) => {
        const scope = scopes[i]!;
        if (consumed <= points[scope]) return;
        throw appError(ErrorCode.RATE_LIMITED, {
          retryAfterMs: Math.max(0, msLeft),
          details: { scope, flooding: consumed > 2 * points[scope] },
        });
      });
    },
  };
}
