/**
 * Access tokens (AUTH-5): JWT HS256 signed with a KeyObject (jsonwebtoken is
 * ~50× slower with a string secret), algorithm pinned on verify. Refresh tokens
 * are opaque random strings stored only as SHA-256.
 */
import { createHash, createSecretKey, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { z } from 'zod';
import { appError, ErrorCode } from '../../errors.js';
import type { Role } from '../../../shared/schemas/auth.js';

const claimsSchema = z.object({
  sub: z.uuid(),
  sid: z.uuid(),
  jti: z.string().min(1),
  typ: z.literal('access'),
  role: z.enum(['user', 'admin']),
  iat: z.number().int(),
  exp: z.number().int(),
});
export type AccessClaims = z.infer<typeof claimsSchema>;

export interface IssuedAccessToken {
  token: string;
  claims: AccessClaims;
  expiresAt: Date;
}

export interface TokenService {
  /** A token that expires after the TTL, or at `notAfter` (the session's absolute expiry, AUTH-12) when sooner. */
  issueAccess(input: { userId: string; sessionId: string; role: Role; notAfter?: Date }): IssuedAccessToken;
  /**
   * Verifies signature, algorithm, expiry and shape; throws UNAUTHENTICATED or TOKEN_EXPIRED.
   * `allowExpired` accepts a genuine token past its `exp` (logout, AUTH-7).
   */
  verifyAccess(token: unknown, options?: { allowExpired?: boolean }): AccessClaims;
  readonly accessTtlSeconds: number;
}

export function createTokenService(options: { secretKey: string; accessTtlSeconds: number }): TokenService {
  const key: KeyObject = createSecretKey(Buffer.from(options.secretKey, 'utf8'));
  const ttl = options.accessTtlSeconds;
  return {
    accessTtlSeconds: ttl,
    issueAccess({ userId, sessionId, role, notAfter }) {
      const iat = Math.floor(Date.now() / 1000);
      const exp = notAfter === undefined ? iat + ttl : Math.min(iat + ttl, Math.floor(notAfter.getTime() / 1000));
      const claims: AccessClaims = { sub: userId, sid: sessionId, jti: randomUUID(), typ: 'access', role, iat, exp };
      const token = jwt.sign(claims, key, { algorithm: 'HS256' });
      return { token, claims, expiresAt: new Date(claims.exp * 1000) };
    },
    verifyAccess(token, options = {}) {
      if (typeof token !== 'string' || token.length === 0 || token.length > 4096) {
        throw appError(ErrorCode.UNAUTHENTICATED);
      }
      let decoded: unknown;
      try {
        decoded = jwt.verify(token, key, { algorithms: ['HS256'], ignoreExpiration: options.allowExpired === true });
      } catch (err) {
        if (err instanceof jwt.TokenExpiredError) throw appError(ErrorCode.TOKEN_EXPIRED);
        throw appError(ErrorCode.UNAUTHENTICATED);
      }
      const parsed = claimsSchema.safeParse(decoded);
      if (!parsed.success) throw appError(ErrorCode.UNAUTHENTICATED);
      return parsed.data;
    },
  };
}

/** A new opaque refresh token: 256 random bits, base64url. */
export const newRefreshToken = (): string => randomBytes(32).toString('base64url');

export const hashRefreshToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

/** `Bearer <token>` → token, else undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  return match?.[1];
}
