/**
 * AUTH-4: after `maxFailures` consecutive failed checks of one email's password
 * (logins, known email or not, and every other check of it such as
 * `user:delete`), every check for it is refused for `lockoutSeconds`.
 *
 * Atomic: an attempt is counted when it arrives, before its password is
 * verified, with one atomic increment in Redis that every node shares; a right
 * password gives its attempt back by resetting the count. So however many
 * attempts arrive at once, at most `maxFailures` of them are verified before
 * the lock, and the rest are refused at once. A per-process limiter insures
 * against Redis loss.
 */
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { appError, ErrorCode } from '../../errors.js';
import type { Redis } from '../../redis.js';

/** One counted attempt, to be settled once its password has been verified (or could not be). */
export interface LockoutAttempt {
  /** The password was right: the count starts again. */
  succeeded(): Promise<void>;
  /** The password was wrong: the attempt stays counted; resolves true when this failure locked the email. */
  failed(): Promise<boolean>;
  /** The password was never verified (the hashing queue was full, the database away): the attempt is given back. */
  abandoned(): Promise<void>;
}

export interface Lockout {
  /**
   * Counts an attempt for `email` before its password is verified; throws
   * ACCOUNT_LOCKED (with `retryAfterMs`) when the email is locked, or when the
   * attempts already counted fill its allowance.
   */
  begin(email: string): Promise<LockoutAttempt>;
  /** Forgets the email's failures and lock (a password reset, AUTH-17). */
  clear(email: string): Promise<void>;
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
    async begin(email) {
      let counted: RateLimiterRes;
      try {
        counted = await limiter.consume(email);
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        throw appError(ErrorCode.ACCOUNT_LOCKED, { retryAfterMs: Math.max(1, rejection.msBeforeNext) });
      }
      return {
        async succeeded() {
          await limiter.delete(email);
        },
        async failed() {
          // The attempt that took the last point starts the lock when it fails: LOCKOUT_MINUTES from now.
          if (counted.remainingPoints > 0) return false;
          await limiter.block(email, lockoutSeconds);
          return true;
        },
        async abandoned() {
          await limiter.reward(email, 1);
        },
      };
    },
    async clear(email) {
      await limiter.delete(email);
    },
  };
}
