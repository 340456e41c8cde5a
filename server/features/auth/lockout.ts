/**
 * AUTH-4: after `maxFailures` consecutive failed logins for one email (known or
 * not), every login for it is refused for `lockoutSeconds`. Counted in Redis so
 * that it holds across nodes; a per-process limiter insures against Redis loss.
 */
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Redis } from '../../redis.js';

export interface Lockout {
  /** ms until the lock lifts, or 0 when not locked */
  lockedForMs(email: string): Promise<number>;
  /** Counts a failure; returns true when this failure locked the account. */
  recordFailure(email: string): Promise<boolean>;
  reset(email: string): Promise<void>;
}

export function createLockout(options: { redis: Redis; maxFailures: number; lockoutSeconds: number }): Lockout {
  const { maxFailures, lockoutSeconds } = options;
  const limiterOptions = { keyPrefix: 'lockout', points: maxFailures, duration: lockoutSeconds };
  const limiter: RateLimiterAbstract = new RateLimiterRedis({
    ...limiterOptions,
    storeClient: options.redis,
    rejectIfRedisNotReady: true,
    insuranceLimiter: new RateLimiterMemory(limiterOptions),
  });
  return {
    async lockedForMs(email) {
      const res = await limiter.get(email);
      if (res && res.consumedPoints > maxFailures) return Math.max(1, res.msBeforeNext);
      return 0;
    },
    async recordFailure(email) {
      try {
        const res = await limiter.consume(email);
        if (res.remainingPoints === 0) {
          await limiter.block(email, lockoutSeconds);
          return true;
        }
        return false;
      } catch {
        // Already past the limit (a concurrent failure locked it).
        await limiter.block(email, lockoutSeconds);
        return false;
      }
    },
    async reset(email) {
      await limiter.delete(email);
    },
  };
}
