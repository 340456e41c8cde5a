/**
 * AUTH-6, the rule of one use of a refresh token, decided on the token as its
 * session's row lock found it (`sessions.repository.ts` runs it inside that
 * lock): a known, live token is retired and gets a child; a retired one gets
 * a sibling once within the grace window (a second tab that raced the first);
 * any later use is a replay, and revokes the session.
 */
import { limits } from '../../../shared/limits.js';
import type { PresentedToken, RotationStep } from './sessions.repository.js';

export interface RotationInput {
  now: Date;
  /** the hash of the token handed out when the use succeeds */
  childHash: string;
  /** a refresh token's lifetime (REFRESH_TOKEN_TTL_SECONDS) */
  refreshTtlMs: number;
  /** the client's address, recorded on the session */
  ip: string | undefined;
}

/** A refresh token's expiry: its lifetime, never past its session's absolute expiry (AUTH-6). */
export function refreshExpiry(absoluteExpiresAt: Date, now: Date, refreshTtlMs: number): Date {
  return new Date(Math.min(now.getTime() + refreshTtlMs, absoluteExpiresAt.getTime()));
}

export function rotationStep(found: PresentedToken | undefined, input: RotationInput, graceMs = limits.refreshGraceMs): RotationStep {
  const { now } = input;
  if (!found || found.sessionRevoked || found.absoluteExpiresAt <= now || found.expiresAt <= now) return { kind: 'refuse' };
  let use: 'retire' | 'grace' = 'retire';
  if (found.retiredAt) {
    // The grace serves one racing request per retired token (the session row lock orders them), not any number.
    const inGrace = now.getTime() - found.retiredAt.getTime() <= graceMs && !found.graceUsedAt;
    if (!inGrace) return { kind: 'revoke' };
    use = 'grace';
  }
  const childExpiresAt = refreshExpiry(found.absoluteExpiresAt, now, input.refreshTtlMs);
  return { kind: 'rotate', use, childHash: input.childHash, childExpiresAt, ip: input.ip ?? null };
}
