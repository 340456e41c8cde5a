/**
 * The auth lifecycle (PROTOCOL §3): signup, login, refresh with rotation and
 * replay detection, logout, logout-all. Takes typed, validated values; knows
 * nothing of HTTP.
 */
import { randomUUID } from 'node:crypto';
import { LockMode, UniqueConstraintViolationException, type MikroORM } from '@mikro-orm/postgresql';
import type { EntityManager } from '@mikro-orm/postgresql';
import { AppError, appError, ErrorCode } from '../../errors.js';
import { limits } from '../../../shared/limits.js';
import type { LoginBody, SignupBody, UserView } from '../../../shared/schemas/auth.js';
import { maskEmail, securityLog, type Logger } from '../../logger.js';
import { UserSchema, type User } from './user.entity.js';
import { RefreshTokenSchema, SessionSchema, type Session } from './session.entity.js';
import type { PasswordHasher, PasswordPolicy } from './passwords.js';
import type { Lockout } from './lockout.js';
import type { BlacklistRead, RevocationStore } from './revocation.js';
import { revokeSessions } from './sessions.repository.js';
import type { RevocationReason } from '../../../shared/constants.js';
import { hashRefreshToken, newRefreshToken, type AccessClaims, type TokenService } from './tokens.js';

export interface ClientContext {
  ip: string | undefined;
  userAgent: string | undefined;
}

export interface IssuedSession {
  user: UserView;
  accessToken: string;
  expiresAt: Date;
  refreshToken: string;
  /** when the refresh cookie should expire */
  refreshExpiresAt: Date;
  sessionId: string;
}

export interface AuthService {
  signup(input: SignupBody, ctx: ClientContext): Promise<IssuedSession>;
  login(input: LoginBody, ctx: ClientContext): Promise<IssuedSession>;
  refresh(refreshToken: string | undefined, ctx: ClientContext): Promise<Omit<IssuedSession, 'user'>>;
  /** Verifies an access token, including revocation (Bearer, `auth:refresh`). */
  authenticate(token: unknown): Promise<AccessClaims>;
  /** Verifies an access token's signature, algorithm, expiry and shape only (the first half of `authenticate`). */
  verifyToken(token: unknown): AccessClaims;
  /**
   * Throws TOKEN_REVOKED when the token's session or user tokens were revoked (the second half of
   * `authenticate`); `read` is the blacklist as read by a caller that shares the round trip (handshakes).
   */
  assertNotRevoked(claims: AccessClaims, read?: Promise<BlacklistRead>): Promise<void>;
  /**
   * The session a logout ends (AUTH-7): the Bearer's, when it is valid; an expired Bearer counts when its
   * signature is genuine and the refresh cookie of the same session comes with it; no Bearer, the cookie's.
   */
  logoutTarget(bearer: string | undefined, refreshToken: string | undefined): Promise<{ sessionId: string; userId: string }>;
  revokeSessions(userId: string, sessionIds: string[] | 'all', reason: RevocationReason): Promise<string[]>;
  /**
   * Checks a user's password outside a login (account deletion): counted toward the email's lockout like a
   * login (AUTH-4), so ACCOUNT_LOCKED when locked; false when wrong or the user is gone.
   */
  verifyPassword(userId: string, password: string): Promise<boolean>;
}

/** The wire user, from an entity or a plain row with the same property names (`createdAt` as text or Date). */
export function toUserView(user: Pick<User, 'id' | 'email' | 'fullName' | 'timezone' | 'role' | 'mfaEnabledAt'> & { createdAt: Date | string }): UserView {
  return {
    id: user.id,
    email: user.email,
    fullName: user.fullName,
    timezone: user.timezone,
    role: user.role,
    createdAt: new Date(user.createdAt).toISOString(),
    mfaEnabled: Boolean(user.mfaEnabledAt),
  };
}

export function createAuthService(deps: {
  orm: MikroORM;
  logger: Logger;
  hasher: PasswordHasher;
  policy: PasswordPolicy;
  lockout: Lockout;
  tokens: TokenService;
  revocation: RevocationStore;
  refreshTokenTtlSeconds: number;
  sessionMaxSeconds: number;
}): AuthService {
  const { orm, logger, hasher, policy, lockout, tokens, revocation } = deps;

  /**
   * Verifies `password` against `passwordHash` (or spends the same time when there is no account), counted
   * toward the email's lockout before the hash is computed (AUTH-4). Throws ACCOUNT_LOCKED, or RATE_LIMITED
   * when the hashing line is full (the attempt is then given back).
   */
  async function checkPassword(email: string, passwordHash: string | undefined, password: string, ctx: Partial<ClientContext> & { context?: string }): Promise<boolean> {
    let attempt;
    try {
      attempt = await lockout.begin(email);
    } catch (err) {
      if (err instanceof AppError && err.code === ErrorCode.ACCOUNT_LOCKED) {
        securityLog(logger, 'login_failed', { email: maskEmail(email), ip: ctx.ip, reason: 'locked', ...(ctx.context ? { context: ctx.context } : {}) });
      }
      throw err;
    }
    let ok: boolean;
    try {
      ok = passwordHash === undefined ? (await hasher.verifyDummy(password), false) : await hasher.verify(passwordHash, password);
    } catch (err) {
      await attempt.abandoned().catch(() => undefined);
      throw err;
    }
    if (ok) {
      await attempt.succeeded();
      return true;
    }
    const locked = await attempt.failed();
    securityLog(logger, 'login_failed', { email: maskEmail(email), ip: ctx.ip, reason: 'invalid_credentials', ...(ctx.context ? { context: ctx.context } : {}) });
    if (locked) securityLog(logger, 'account_locked', { email: maskEmail(email), ip: ctx.ip });
    return false;
  }

  function refreshExpiry(session: Session, now: Date): Date {
    return new Date(Math.min(now.getTime() + deps.refreshTokenTtlSeconds * 1000, session.absoluteExpiresAt.getTime()));
  }

  /** A new refresh token of `session` (stored as its hash), child of `parentHash`. */
  function addRefreshToken(em: EntityManager, session: Session, parentHash: string | null, now: Date) {
    const refreshToken = newRefreshToken();
    const refreshExpiresAt = refreshExpiry(session, now);
    em.create(RefreshTokenSchema, { tokenHash: hashRefreshToken(refreshToken), session, parentHash, createdAt: now, expiresAt: refreshExpiresAt });
    return { refreshToken, refreshExpiresAt };
  }

  async function openSession(em: EntityManager, user: User, ctx: ClientContext): Promise<IssuedSession> {
    const now = new Date();
    const session = em.create(SessionSchema, {
      id: randomUUID(),
      user,
      createdAt: now,
      lastUsedAt: now,
      absoluteExpiresAt: new Date(now.getTime() + deps.sessionMaxSeconds * 1000),
      userAgent: ctx.userAgent?.slice(0, 512) ?? null,
      ip: ctx.ip?.slice(0, 64) ?? null,
    });
    const { refreshToken, refreshExpiresAt } = addRefreshToken(em, session, null, now);
    await em.flush();
    const access = tokens.issueAccess({ userId: user.id, sessionId: session.id, role: user.role, notAfter: session.absoluteExpiresAt });
    return {
      user: toUserView(user),
      accessToken: access.token,
      expiresAt: access.expiresAt,
      refreshToken,
      refreshExpiresAt,
      sessionId: session.id,
    };
  }

  /** The live session a refresh token belongs to, if it is its current token. */
  async function sessionOfRefreshToken(refreshToken: string): Promise<{ sessionId: string; userId: string } | undefined> {
    if (refreshToken.length > 256) return undefined;
    const em = orm.em.fork();
    const found = await em.findOne(RefreshTokenSchema, hashRefreshToken(refreshToken), { populate: ['session'] });
    if (!found || found.retiredAt || found.session.revokedAt) return undefined;
    return { sessionId: found.session.id, userId: found.session.user.id };
  }

  return {
    async signup(input, ctx) {
      await policy.check(input.password);
      const em = orm.em.fork();
      if (await em.count(UserSchema, { email: input.email })) throw appError(ErrorCode.EMAIL_TAKEN);
      const passwordHash = await hasher.hash(input.password);
      const now = new Date();
      const user = em.create(UserSchema, {
        id: randomUUID(),
        email: input.email,
        passwordHash,
        fullName: input.fullName?.trim() ?? '',
        timezone: input.timezone ?? 'UTC',
        // Never by signing up: an operator grants admin (PROTOCOL §3a).
        role: 'user',
        lastLoginAt: now,
        tokensValidAfter: null,
        taskSeq: 0,
        createdAt: now,
        updatedAt: now,
      });
      try {
        const issued = await openSession(em, user, ctx);
        securityLog(logger, 'signup', { userId: user.id, email: maskEmail(user.email), ip: ctx.ip });
        return issued;
      } catch (err) {
        if (err instanceof UniqueConstraintViolationException) throw appError(ErrorCode.EMAIL_TAKEN);
        throw err;
      }
    },

    async login(input, ctx) {
      const email = input.email;
      const em = orm.em.fork();
      const user = await em.findOne(UserSchema, { email });
      if (!(await checkPassword(email, user?.passwordHash, input.password, ctx)) || !user) throw appError(ErrorCode.INVALID_CREDENTIALS);
      user.lastLoginAt = new Date();
      const issued = await openSession(em, user, ctx);
      securityLog(logger, 'login_succeeded', { userId: user.id, sessionId: issued.sessionId, ip: ctx.ip });
      return issued;
    },

    async refresh(refreshToken, ctx) {
      if (!refreshToken || refreshToken.length > 256) throw appError(ErrorCode.UNAUTHENTICATED);
      const hash = hashRefreshToken(refreshToken);
      const em = orm.em.fork();
      const outcome = await em.transactional(async (tem) => {
        const found = await tem.findOne(RefreshTokenSchema, hash);
        if (!found) return { kind: 'unknown' as const };
        const session = await tem.findOneOrFail(SessionSchema, found.session.id, {
          lockMode: LockMode.PESSIMISTIC_WRITE,
          populate: ['user'],
        });
        const token = await tem.findOneOrFail(RefreshTokenSchema, hash, { refresh: true });
        const now = new Date();
        if (session.revokedAt) return { kind: 'revoked' as const };
        if (session.absoluteExpiresAt <= now || token.expiresAt <= now) return { kind: 'expired' as const };
        if (token.retiredAt) {
          // The grace serves one racing request per retired token (the session row lock orders them), not any number.
          const inGrace = now.getTime() - token.retiredAt.getTime() <= limits.refreshGraceMs && !token.graceUsedAt;
          if (!inGrace) {
            await revokeSessions(tem, session.user.id, [session.id], 'refresh_reuse');
            return { kind: 'reuse' as const, sessionId: session.id, userId: session.user.id };
          }
          token.graceUsedAt = now;
        } else {
          token.retiredAt = now;
        }
        // A racing second tab inside the grace window gets a sibling token of the same session.
        const { refreshToken: next, refreshExpiresAt } = addRefreshToken(tem, session, hash, now);
        session.rotations += 1;
        session.lastUsedAt = now;
        if (ctx.ip) session.ip = ctx.ip.slice(0, 64);
        return { kind: 'rotated' as const, session, user: session.user, refreshToken: next, refreshExpiresAt };
      });
      switch (outcome.kind) {
        case 'unknown':
        case 'expired':
          throw appError(ErrorCode.UNAUTHENTICATED);
        case 'revoked':
          throw appError(ErrorCode.TOKEN_REVOKED);
        case 'reuse':
          securityLog(logger, 'refresh_reuse_detected', { userId: outcome.userId, sessionId: outcome.sessionId, ip: ctx.ip });
          await revocation.blacklist([outcome.sessionId], 'refresh_reuse');
          throw appError(ErrorCode.TOKEN_REVOKED);
        case 'rotated': {
          // The role as PostgreSQL has it now (AUTH-12): a grant or a revoke shows in the next token.
          const access = tokens.issueAccess({ userId: outcome.user.id, sessionId: outcome.session.id, role: outcome.user.role, notAfter: outcome.session.absoluteExpiresAt });
          return {
            accessToken: access.token,
            expiresAt: access.expiresAt,
            refreshToken: outcome.refreshToken,
            refreshExpiresAt: outcome.refreshExpiresAt,
            sessionId: outcome.session.id,
          };
        }
      }
    },

    async authenticate(token) {
      const claims = tokens.verifyAccess(token);
      await revocation.assertNotRevoked(claims);
      return claims;
    },

    verifyToken(token) {
      return tokens.verifyAccess(token);
    },

    assertNotRevoked(claims, read) {
      return revocation.assertNotRevoked(claims, read);
    },

    async logoutTarget(bearer, refreshToken) {
      const ofCookie = async () => {
        const found = refreshToken ? await sessionOfRefreshToken(refreshToken) : undefined;
        if (!found) throw appError(ErrorCode.UNAUTHENTICATED);
        return found;
      };
      if (!bearer) return ofCookie();
      let claims: AccessClaims;
      try {
        claims = tokens.verifyAccess(bearer);
      } catch (err) {
        // An expired token still says whose session it was when its signature is genuine; the cookie proves the rest.
        if (!(err instanceof AppError && err.code === ErrorCode.TOKEN_EXPIRED) || !refreshToken) throw err;
        const expired = tokens.verifyAccess(bearer, { allowExpired: true });
        const session = await ofCookie();
        if (expired.sid !== session.sessionId || expired.sub !== session.userId) throw appError(ErrorCode.UNAUTHENTICATED);
        return session;
      }
      await revocation.assertNotRevoked(claims);
      return { sessionId: claims.sid, userId: claims.sub };
    },

    async revokeSessions(userId, sessionIds, reason) {
      const em = orm.em.fork();
      const ids = await em.transactional((tem) => revokeSessions(tem, userId, sessionIds, reason));
      await revocation.blacklist(ids, reason);
      return ids;
    },

    async verifyPassword(userId, password) {
      const em = orm.em.fork();
      const user = await em.findOne(UserSchema, userId);
      if (!user) return false;
      return checkPassword(user.email, user.passwordHash, password, { context: 'password_check' });
    },
  };
}

export { AppError };
