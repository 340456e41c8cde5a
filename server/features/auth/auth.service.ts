/**
 * The auth lifecycle (PROTOCOL §3): signup, login, refresh with rotation and
 * replay detection, logout, logout-all. Takes typed, validated values; knows
 * nothing of HTTP.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { AppError, appError, ErrorCode } from '../../errors.js';
import type { LoginBody, SignupBody, UserView } from '../../../shared/schemas/auth.js';
import { maskEmail, securityLog, type Logger } from '../../logger.js';
import { UserSchema, type User } from './user.entity.js';
import { RefreshTokenSchema } from './session.entity.js';
import type { PasswordHasher, PasswordPolicy } from './passwords.js';
import type { Lockout } from './lockout.js';
import type { BlacklistRead, RevocationStore } from './revocation.js';
import type { NewSession, SessionsRepository } from './sessions.repository.js';
import { refreshExpiry, rotationStep } from './refresh-rotation.js';
import { isUniqueViolation } from '../../db/postgres.js';
import type { RevocationReason } from '../../../shared/constants.js';
import { hashRefreshToken, newRefreshToken, type AccessClaims, type TokenService } from './tokens.js';
import type { LoginMfaBody, MfaChallenge } from '../../../shared/schemas/security.js';
import type { SecurityRepository } from '../security/security.repository.js';
import type { SecondFactor, SecondFactorKind } from '../security/second-factor.js';
import type { SecurityLog } from '../security/security-log.js';

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
  /** With two-factor on, a right password throws MFA_REQUIRED with a challenge in `details` (AUTH-13). */
  login(input: LoginBody, ctx: ClientContext): Promise<IssuedSession>;
  /** Finishes a login with its challenge and a TOTP or recovery code (AUTH-13, AUTH-14). */
  loginMfa(input: LoginMfaBody, ctx: ClientContext): Promise<IssuedSession>;
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
  /** `{ except }`: every session of the user but that one (a password or two-factor change, AUTH-14/15). */
  revokeSessions(userId: string, sessionIds: string[] | 'all' | { except: string }, reason: RevocationReason): Promise<string[]>;
  /**
   * Checks a user's password outside a login (account deletion, password and two-factor changes): counted
   * toward the email's lockout like a login (AUTH-4), so ACCOUNT_LOCKED when locked; false when wrong or the
   * user is gone.
   */
  verifyPassword(userId: string, password: string, ctx?: Partial<ClientContext>): Promise<boolean>;
  /** Checks (and spends) a second-factor code of a user with two-factor on, counted toward the lockout alike. */
  verifySecondFactor(userId: string, code: string, ctx?: Partial<ClientContext>): Promise<SecondFactorKind | null>;
  /** Any other check of a code (enabling: a code of the new secret) inside the email's lockout; null when it failed. */
  countedCheck<T>(email: string, userId: string, ctx: Partial<ClientContext>, check: () => Promise<T | null>): Promise<T | null>;
  /** AUTH-17: a password reset clears the email's lockout. */
  clearLockout(email: string): Promise<void>;
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

/** What a password or code check needs of the account, when there is one. */
type CheckedUser = Pick<User, 'id'> & Partial<Pick<User, 'passwordHash'>>;
type CheckContext = Partial<ClientContext> & { context?: string; keepCount?: boolean };

export function createAuthService(deps: {
  /** reads of the account (MikroORM); every write of the lifecycle goes through `sessions` */
  orm: MikroORM;
  sessions: SessionsRepository;
  logger: Logger;
  hasher: PasswordHasher;
  policy: PasswordPolicy;
  lockout: Lockout;
  tokens: TokenService;
  revocation: RevocationStore;
  refreshTokenTtlSeconds: number;
  sessionMaxSeconds: number;
  security: SecurityRepository;
  secondFactor: SecondFactor;
  securityLog: SecurityLog;
  /** AUTH-13: how long an MFA_REQUIRED challenge lives */
  mfaChallengeMs: number;
}): AuthService {
  const { orm, sessions, logger, hasher, policy, lockout, tokens, revocation, security, secondFactor } = deps;
  const audit = deps.securityLog;

  /**
   * Verifies `password` against `passwordHash` (or spends the same time when there is no account), counted
   * toward the email's lockout before the hash is computed (AUTH-4). Throws ACCOUNT_LOCKED, or RATE_LIMITED
   * when the hashing line is full (the attempt is then given back).
   */
  async function checkPassword(email: string, user: CheckedUser | undefined, password: string, ctx: CheckContext): Promise<boolean> {
    const ok = await counted(email, user, ctx, 'invalid_credentials', async () => {
      if (user?.passwordHash === undefined) {
        await hasher.verifyDummy(password);
        return false;
      }
      return hasher.verify(user.passwordHash, password);
    });
    return ok === true;
  }

  /**
   * Runs one check of an email's password or second factor inside its lockout (AUTH-4), logging failures
   * to stdout and to the durable security log (AUTH-18). With two-factor on, a right password does not
   * reset the count (only a right code does), so that knowing the password buys no fresh code guesses.
   */
  async function counted<T>(email: string, user: CheckedUser | undefined, ctx: CheckContext, failure: string, check: () => Promise<T | false | null>): Promise<T | false | null> {
    const context = ctx.context ? { context: ctx.context } : {};
    const durable = { userId: user?.id ?? null, email, ip: ctx.ip, userAgent: ctx.userAgent };
    let attempt;
    try {
      attempt = await lockout.begin(email);
    } catch (err) {
      if (err instanceof AppError && err.code === ErrorCode.ACCOUNT_LOCKED) {
        securityLog(logger, 'login_failed', { email: maskEmail(email), ip: ctx.ip, reason: 'locked', ...context });
        audit.record('login_failed', { ...durable, details: { reason: 'locked', ...context } });
      }
      throw err;
    }
    let result: T | false | null;
    try {
      result = await check();
    } catch (err) {
      await attempt.abandoned().catch(() => undefined);
      throw err;
    }
    if (result !== false && result !== null) {
      if (ctx.keepCount) await attempt.abandoned();
      else await attempt.succeeded();
      return result;
    }
    const locked = await attempt.failed();
    securityLog(logger, 'login_failed', { email: maskEmail(email), ip: ctx.ip, reason: failure, ...context });
    audit.record('login_failed', { ...durable, details: { reason: failure, ...context } });
    if (locked) {
      securityLog(logger, 'account_locked', { email: maskEmail(email), ip: ctx.ip });
      audit.record('account_locked', durable);
    }
    return result;
  }

  /** AUTH-13: a right password of an account with two-factor on: a challenge instead of a session. */
  async function challenge(user: User, ctx: ClientContext): Promise<never> {
    const token = randomBytes(32).toString('base64url');
    const expiresAt = new Date(Date.now() + deps.mfaChallengeMs);
    await security.createChallenge(hashRefreshToken(token), user.id, expiresAt);
    securityLog(logger, 'mfa_challenged', { userId: user.id, ip: ctx.ip });
    const details: MfaChallenge = { challenge: token, expiresAt: expiresAt.toISOString() };
    throw appError(ErrorCode.MFA_REQUIRED, { details: { ...details } });
  }

  const refreshTtlMs = deps.refreshTokenTtlSeconds * 1000;

  /** A new session of `user` with its first refresh token: the row to write, and the tokens to hand out once written. */
  function newSession(user: Pick<User, 'id' | 'role'>, ctx: ClientContext, now: Date) {
    const refreshToken = newRefreshToken();
    const absoluteExpiresAt = new Date(now.getTime() + deps.sessionMaxSeconds * 1000);
    const row: NewSession = {
      id: randomUUID(),
      userId: user.id,
      createdAt: now,
      absoluteExpiresAt,
      userAgent: ctx.userAgent ?? null,
      ip: ctx.ip ?? null,
      refreshTokenHash: hashRefreshToken(refreshToken),
      refreshExpiresAt: refreshExpiry(absoluteExpiresAt, now, refreshTtlMs),
    };
    const issue = (view: UserView): IssuedSession => {
      const access = tokens.issueAccess({ userId: user.id, sessionId: row.id, role: user.role, notAfter: absoluteExpiresAt });
      return { user: view, accessToken: access.token, expiresAt: access.expiresAt, refreshToken, refreshExpiresAt: row.refreshExpiresAt, sessionId: row.id };
    };
    return { row, issue };
  }

  /** A login that passed every check: the session, logged to stdout and to the security log (with its new-device notice). */
  async function signIn(user: User, ctx: ClientContext, details?: Record<string, unknown>): Promise<IssuedSession> {
    const now = new Date();
    const { row, issue } = newSession(user, ctx, now);
    await sessions.open(row);
    const issued = issue(toUserView(user));
    securityLog(logger, 'login_succeeded', { userId: user.id, sessionId: issued.sessionId, ip: ctx.ip });
    audit.signedIn({ userId: user.id, sessionId: issued.sessionId, createdAt: now, ...ctx, details });
    return issued;
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
      if (await orm.em.fork().count(UserSchema, { email: input.email })) throw appError(ErrorCode.EMAIL_TAKEN);
      const passwordHash = await hasher.hash(input.password);
      const now = new Date();
      // Never admin by signing up: an operator grants it (PROTOCOL §3a).
      const user = { id: randomUUID(), email: input.email, passwordHash, fullName: input.fullName?.trim() ?? '', timezone: input.timezone ?? 'UTC', createdAt: now };
      const role = 'user';
      const { row, issue } = newSession({ id: user.id, role }, ctx, now);
      try {
        await sessions.createUser(user, row);
        const issued = issue(toUserView({ ...user, role, mfaEnabledAt: null }));
        securityLog(logger, 'signup', { userId: user.id, email: maskEmail(user.email), ip: ctx.ip });
        audit.signedIn({ userId: user.id, sessionId: issued.sessionId, createdAt: now, ...ctx, first: true, details: { signup: true } });
        return issued;
      } catch (err) {
        if (isUniqueViolation(err)) throw appError(ErrorCode.EMAIL_TAKEN);
        throw err;
      }
    },

    async login(input, ctx) {
      const email = input.email;
      const user = await orm.em.fork().findOne(UserSchema, { email });
      const mfa = Boolean(user?.mfaEnabledAt && user.mfaSecret);
      if (!(await checkPassword(email, user ?? undefined, input.password, { ...ctx, keepCount: mfa })) || !user) throw appError(ErrorCode.INVALID_CREDENTIALS);
      if (mfa) return challenge(user, ctx);
      return signIn(user, ctx);
    },

    async loginMfa(input, ctx) {
      const challengeHash = hashRefreshToken(input.challenge);
      const open = await security.openChallenge(challengeHash);
      if (!open) throw appError(ErrorCode.UNAUTHENTICATED, { message: 'The sign-in has expired or was already finished; sign in again' });
      const user = await orm.em.fork().findOne(UserSchema, open.userId);
      const secret = user?.mfaEnabledAt ? user.mfaSecret : null;
      if (!user || !secret) throw appError(ErrorCode.UNAUTHENTICATED, { message: 'The sign-in has expired or was already finished; sign in again' });
      const kind = await counted(user.email, user, { ...ctx, context: 'mfa_login' }, 'invalid_code', () => secondFactor.check(user.id, secret, input.code));
      if (!kind) throw appError(ErrorCode.INVALID_CREDENTIALS, { message: 'The code is not right' });
      if (!(await security.consumeChallenge(challengeHash))) throw appError(ErrorCode.UNAUTHENTICATED, { message: 'The sign-in has expired or was already finished; sign in again' });
      if (kind === 'recovery') {
        securityLog(logger, 'recovery_code_used', { userId: user.id, ip: ctx.ip });
        audit.record('recovery_code_used', { userId: user.id, ...ctx });
      }
      return signIn(user, ctx, { mfa: kind });
    },

    async refresh(refreshToken, ctx) {
      if (!refreshToken || refreshToken.length > 256) throw appError(ErrorCode.UNAUTHENTICATED);
      const hash = hashRefreshToken(refreshToken);
      const now = new Date();
      // A racing second tab inside the grace window gets a sibling token of the same session.
      const child = newRefreshToken();
      const { found, step } = await sessions.rotate(hash, now, (token) =>
        rotationStep(token, { now, childHash: hashRefreshToken(child), refreshTtlMs, ip: ctx.ip }),
      );
      if (!found) throw appError(ErrorCode.UNAUTHENTICATED);
      switch (step.kind) {
        case 'refuse':
          throw appError(found.sessionRevoked ? ErrorCode.TOKEN_REVOKED : ErrorCode.UNAUTHENTICATED);
        case 'revoke':
          securityLog(logger, 'refresh_reuse_detected', { userId: found.userId, sessionId: found.sessionId, ip: ctx.ip });
          audit.record('refresh_reuse_detected', { userId: found.userId, ...ctx, details: { sessionId: found.sessionId } });
          await revocation.blacklist([found.sessionId], 'refresh_reuse');
          throw appError(ErrorCode.TOKEN_REVOKED);
        case 'rotate': {
          // The role as PostgreSQL has it now (AUTH-12): a grant or a revoke shows in the next token.
          const access = tokens.issueAccess({ userId: found.userId, sessionId: found.sessionId, role: found.role, notAfter: found.absoluteExpiresAt });
          return { accessToken: access.token, expiresAt: access.expiresAt, refreshToken: child, refreshExpiresAt: step.childExpiresAt, sessionId: found.sessionId };
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
      const ids = await sessions.revokeSessions(userId, sessionIds, reason);
      await revocation.blacklist(ids, reason);
      return ids;
    },

    async verifyPassword(userId, password, ctx = {}) {
      const em = orm.em.fork();
      const user = await em.findOne(UserSchema, userId);
      if (!user) return false;
      return checkPassword(user.email, user, password, { ...ctx, context: 'password_check', keepCount: Boolean(user.mfaEnabledAt) });
    },

    async verifySecondFactor(userId, code, ctx = {}) {
      const em = orm.em.fork();
      const user = await em.findOne(UserSchema, userId);
      const secret = user?.mfaEnabledAt ? user.mfaSecret : null;
      if (!user || !secret) return null;
      const kind = await counted(user.email, user, { ...ctx, context: 'code_check' }, 'invalid_code', () => secondFactor.check(userId, secret, code));
      return kind || null;
    },

    async countedCheck(email, userId, ctx, check) {
      const result = await counted(email, { id: userId }, { ...ctx, context: 'code_check' }, 'invalid_code', check);
      return result === false ? null : result;
    },

    clearLockout(email) {
      return lockout.clear(email);
    },
  };
}

export { AppError };
