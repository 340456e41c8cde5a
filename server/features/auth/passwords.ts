/**
 * Password hashing (argon2id at or above OWASP's minimum: m=19 MiB, t=2, p=1)
 * and the AUTH-1 policy. Hashing is CPU-bound, so at most one hash per core
 * runs at once; the rest wait in a bounded line, and past it a request is
 * refused with RATE_LIMITED at once instead of making every login wait.
 */
import os from 'node:os';
import argon2 from 'argon2';
import { randomBytes } from 'node:crypto';
import { appError, ErrorCode } from '../../errors.js';
import {
  failedPasswordRules,
  nistLengthMessage,
  passwordRuleMessages,
  type PasswordPolicyName,
} from '../../../shared/password-policy.js';
import type { BreachChecker } from './breach.js';

const argonOptions = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/** Hashes waiting for a slot, per slot, before the line is full (about 0.7 s of waiting at ~21 ms a hash). */
export const HASH_QUEUE_PER_SLOT = 32;

export interface PasswordHasher {
  /** Throws RATE_LIMITED, like `verify` and `verifyDummy`, when the hashing line is full. */
  hash(password: string): Promise<string>;
  verify(hash: string, password: string): Promise<boolean>;
  /** Spends the time of one verification, for unknown emails (AUTH-3). */
  verifyDummy(password: string): Promise<void>;
}

/**
 * At most `concurrency` argon2 computations at a time (each holds a core for
 * tens of milliseconds): by default one core fewer than the machine has, so
 * that a burst of logins cannot take every core from the sockets
 * (bench/README.md, "Logins need the cores").
 */
export function createPasswordHasher(concurrency = Math.max(1, os.availableParallelism() - 1), maxWaiting = HASH_QUEUE_PER_SLOT * concurrency): PasswordHasher {
  const limit = createSemaphore(Math.max(1, concurrency), maxWaiting);
  let dummy: Promise<string> | undefined;
  const dummyHash = () => (dummy ??= argon2.hash(randomBytes(16).toString('hex'), argonOptions));
  return {
    hash: (password) => limit(() => argon2.hash(password, argonOptions)),
    verify: (hash, password) =>
      limit(async () => {
        try {
          return await argon2.verify(hash, password);
        } catch {
          return false;
        }
      }),
    verifyDummy: async (password) => {
      const hash = await dummyHash();
      await limit(() => argon2.verify(hash, password).catch(() => false));
    },
  };
}

export interface PasswordPolicy {
  /** Throws WEAK_PASSWORD naming the first rule that fails (AUTH-1). */
  check(password: string): Promise<void>;
}

export function createPasswordPolicy(policy: PasswordPolicyName, breach: BreachChecker): PasswordPolicy {
  return {
    async check(password) {
      const failed = failedPasswordRules(password, policy);
      const first = failed[0];
      if (first) {
        const message = policy === 'nist' ? nistLengthMessage : passwordRuleMessages[first];
        throw appError(ErrorCode.WEAK_PASSWORD, { message, details: { rule: first } });
      }
      if (await breach.isBreached(password)) {
        throw appError(ErrorCode.WEAK_PASSWORD, { message: passwordRuleMessages.breach, details: { rule: 'breach' } });
      }
    },
  };
}

/**
 * Runs at most `n` tasks at once, in arrival order, with at most `maxWaiting`
 * waiting: a task beyond that is refused with RATE_LIMITED (AUTH-4: a flood of
 * password checks must not make every login wait seconds).
 */
export function createSemaphore(n: number, maxWaiting = Infinity): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const queue: (() => void)[] = [];
  const release = () => {
    running--;
    queue.shift()?.();
  };
  return async (task) => {
    if (running >= n) {
      if (queue.length >= maxWaiting) throw appError(ErrorCode.RATE_LIMITED, { message: 'Too many sign-ins at once; try again in a moment', retryAfterMs: 1_000 });
      await new Promise<void>((resolve) => queue.push(resolve));
    }
    running++;
    try {
      return await task();
    } finally {
      release();
    }
  };
}
