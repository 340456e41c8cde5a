/**
 * Account security a user drives (PROTOCOL §3b, §6.3b): password change
 * (AUTH-15), two-factor enrolment and its recovery codes (AUTH-13/14),
 * password reset by email (AUTH-16/17) and reading the security log
 * (AUTH-18). Every password or code it checks counts toward the email's
 * lockout (AUTH-4) through the auth service; every revocation goes the AUTH-7
 * way (durable, blacklisted, live sockets closed on every node).
 */
import { randomBytes } from 'node:crypto';
import { backgroundWork } from '../../background.js';
import { appError, ErrorCode } from '../../errors.js';
import { limits } from '../../../shared/limits.js';
import { resetPasswordPath } from '../../../shared/constants.js';
import type { MfaSetup, SecurityLogEntry } from '../../../shared/schemas/security.js';
import { maskEmail, securityLog, type Logger } from '../../logger.js';
import type { AuthService, ClientContext } from '../auth/auth.service.js';
import type { PasswordHasher, PasswordPolicy } from '../auth/passwords.js';
import { hashRefreshToken } from '../auth/tokens.js';
import type { Mailer } from './mailer.js';
import type { SecondFactor } from './second-factor.js';
import type { SecurityLog } from './security-log.js';
import type { SecurityRepository } from './security.repository.js';
import { newRecoveryCodes, newTotpSecret, totpUri } from './totp.js';

export interface AccountSecurity {
  changePassword(userId: string, sessionId: string, input: { currentPassword: string; newPassword: string }, ctx: ClientContext): Promise<void>;
  setupMfa(userId: string): Promise<MfaSetup>;
  enableMfa(userId: string, sessionId: string, input: { password: string; code: string }, ctx: ClientContext): Promise<string[]>;
  disableMfa(userId: string, sessionId: string, input: { password: string; code: string }, ctx: ClientContext): Promise<void>;
  regenerateRecoveryCodes(userId: string, sessionId: string, input: { password: string; code: string }, ctx: ClientContext): Promise<string[]>;
  log(userId: string, page: { before?: string; limit?: number }): Promise<{ events: SecurityLogEntry[]; hasMore: boolean }>;
  /**
   * AUTH-16: the work behind `POST /password/forgot`, begun after it has answered, so that the answer takes
   * the same time whether the email has an account or not; never throws.
   */
  requestReset(email: string, ctx: ClientContext): void;
  /** Resolves when the reset requests begun so far have ended (shutdown, tests). */
  drain(): Promise<void>;
  /** AUTH-17 */
  resetPassword(input: { token: string; password: string }, ctx: ClientContext): Promise<void>;
}

const wrongPassword = () => appError(ErrorCode.INVALID_CREDENTIALS, { message: 'The password is not right' });
const wrongCode = () => appError(ErrorCode.INVALID_CREDENTIALS, { message: 'The code is not right' });

export function createAccountSecurity(deps: {
  auth: AuthService;
  repository: SecurityRepository;
  secondFactor: SecondFactor;
  hasher: PasswordHasher;
  policy: PasswordPolicy;
  mailer: Mailer;
  securityLog: SecurityLog;
  logger: Logger;
  appUrl: string;
  /** broadcasts `user:changed` (the user's `mfaEnabled` changed) */
  userChanged: (userId: string) => Promise<void>;
}): AccountSecurity {
  const { auth, repository, secondFactor, hasher, policy, mailer, logger } = deps;
  const audit = deps.securityLog;

  async function userOrGone(userId: string) {
    const user = await repository.user(userId);
    if (!user) throw appError(ErrorCode.NOT_FOUND, { message: 'Account not found' });
    return user;
  }

  /** AUTH-14: the password, then a current code (TOTP or recovery) of an account with two-factor on. */
  async function confirmWithCode(userId: string, input: { password: string; code: string }, ctx: ClientContext) {
    const user = await userOrGone(userId);
    if (!user.mfaEnabledAt) throw appError(ErrorCode.CONFLICT, { message: 'Two-factor sign-in is off' });
    if (!(await auth.verifyPassword(userId, input.password, ctx))) throw wrongPassword();
    const kind = await auth.verifySecondFactor(userId, input.code, ctx);
    if (!kind) throw wrongCode();
    if (kind === 'recovery') {
      securityLog(logger, 'recovery_code_used', { userId, ip: ctx.ip });
      audit.record('recovery_code_used', { userId, ...ctx });
    }
    return user;
  }

  function newHashedCodes() {
    const codes = newRecoveryCodes();
    return { codes, hashes: codes.map((c) => secondFactor.hashRecoveryCode(c)) };
  }

  /** Sends a reset link when the email has an account; logs either way (AUTH-16, AUTH-18). */
  async function sendResetLink(email: string, ctx: ClientContext): Promise<void> {
    try {
        const user = await repository.userByEmail(email);
        audit.record('password_reset_requested', { userId: user?.id ?? null, email, ...ctx, details: user ? undefined : { unknownEmail: true } });
        securityLog(logger, 'password_reset_requested', { email: maskEmail(email), ip: ctx.ip, known: user !== undefined });
        if (!user) return;
        if (!mailer.canSend) {
          securityLog(logger, 'mail_unavailable', { purpose: 'password_reset' });
          logger.error({ event: 'mail', purpose: 'password_reset' }, 'a password-reset link cannot be sent: SMTP_URL is not set');
          return;
        }
        // 256 random bits; only the hash is stored (AUTH-16). The token rides in the fragment, which browsers never send.
        const token = randomBytes(32).toString('base64url');
        await repository.createResetToken(hashRefreshToken(token), user.id, new Date(Date.now() + limits.resetTokenMs));
        const link = `${deps.appUrl}${resetPasswordPath}#token=${token}`;
        await mailer.send({
          to: user.email,
          subject: 'Reset your Sam password',
          text: [
            'Someone (we hope you) asked to reset the password of your Sam account.',
            '',
            `Open this link within 30 minutes to choose a new password:`,
            link,
            '',
            'If you did not ask for this, ignore this message: your password stays as it is.',
          ].join('\n'),
        });
    } catch (err) {
      logger.error({ err, event: 'mail', purpose: 'password_reset' }, 'a password-reset request failed');
    }
  }

  const background = backgroundWork();

  return {
    async changePassword(userId, sessionId, input, ctx) {
      await userOrGone(userId);
      if (!(await auth.verifyPassword(userId, input.currentPassword, ctx))) throw wrongPassword();
      await policy.check(input.newPassword);
      await repository.setPasswordHash(userId, await hasher.hash(input.newPassword));
      // A link sent before the change must not undo it (AUTH-16).
      await repository.voidResetTokens(userId);
      await auth.revokeSessions(userId, { except: sessionId }, 'password_changed');
      securityLog(logger, 'password_changed', { userId, ip: ctx.ip });
      audit.record('password_changed', { userId, ...ctx });
    },

    async setupMfa(userId) {
      const user = await userOrGone(userId);
      if (user.mfaEnabledAt) throw appError(ErrorCode.CONFLICT, { message: 'Two-factor sign-in is already on; turn it off first' });
      const secret = newTotpSecret();
      await repository.setPendingSecret(userId, secondFactor.seal(userId, secret));
      return { secret, otpauthUrl: totpUri(secret, user.email) };
    },

    async enableMfa(userId, sessionId, input, ctx) {
      const user = await userOrGone(userId);
      if (user.mfaEnabledAt) throw appError(ErrorCode.CONFLICT, { message: 'Two-factor sign-in is already on' });
      if (!user.mfaPendingSecret) throw appError(ErrorCode.CONFLICT, { message: 'Set two-factor sign-in up first (mfa:setup)' });
      if (!(await auth.verifyPassword(userId, input.password, ctx))) throw wrongPassword();
      const pending = user.mfaPendingSecret;
      const step = await auth.countedCheck(user.email, userId, ctx, async () => secondFactor.stepOfPending(userId, pending, input.code));
      if (step === null) throw wrongCode();
      const { codes, hashes } = newHashedCodes();
      if (!(await repository.enable(userId, pending, step, hashes))) throw appError(ErrorCode.CONFLICT, { message: 'A newer setup replaced this one; scan the new code' });
      await auth.revokeSessions(userId, { except: sessionId }, 'mfa_changed');
      securityLog(logger, 'mfa_enabled', { userId, ip: ctx.ip });
      audit.record('mfa_enabled', { userId, ...ctx });
      await deps.userChanged(userId);
      return codes;
    },

    async disableMfa(userId, sessionId, input, ctx) {
      await confirmWithCode(userId, input, ctx);
      await repository.disable(userId);
      await auth.revokeSessions(userId, { except: sessionId }, 'mfa_changed');
      securityLog(logger, 'mfa_disabled', { userId, ip: ctx.ip });
      audit.record('mfa_disabled', { userId, ...ctx });
      await deps.userChanged(userId);
    },

    async regenerateRecoveryCodes(userId, sessionId, input, ctx) {
      await confirmWithCode(userId, input, ctx);
      const { codes, hashes } = newHashedCodes();
      await repository.replaceRecoveryCodes(userId, hashes);
      await auth.revokeSessions(userId, { except: sessionId }, 'mfa_changed');
      securityLog(logger, 'recovery_codes_regenerated', { userId, ip: ctx.ip });
      audit.record('recovery_codes_regenerated', { userId, ...ctx });
      return codes;
    },

    async log(userId, page) {
      const { events, hasMore } = await repository.page(userId, page.before === undefined ? undefined : new Date(page.before), page.limit ?? 50);
      return {
        events: events.map((e) => ({ at: e.at.toISOString(), type: e.type, ip: e.ip, userAgent: e.userAgent, device: e.device })),
        hasMore,
      };
    },

    requestReset(email, ctx) {
      void background.add(sendResetLink(email, ctx));
    },

    drain: () => background.drain(),

    async resetPassword(input, ctx) {
      const tokenHash = hashRefreshToken(input.token);
      const refused = () => appError(ErrorCode.UNAUTHENTICATED, { message: 'This reset link is not valid any more; ask for a new one' });
      // The token is checked before the policy, so that a dead link never gets as far as a password error.
      if (!(await repository.openResetToken(tokenHash))) throw refused();
      await policy.check(input.password);
      const user = await repository.resetPassword(tokenHash, await hasher.hash(input.password));
      if (!user) throw refused();
      await auth.revokeSessions(user.id, 'all', 'password_reset');
      // The password is set and the sessions are gone: a lockout that Redis could not clear now ends on its own.
      await auth.clearLockout(user.email).catch((err: unknown) => logger.warn({ err, event: 'lockout' }, 'could not clear the lockout after a password reset'));
      securityLog(logger, 'password_reset', { userId: user.id, ip: ctx.ip });
      audit.record('password_reset', { userId: user.id, ...ctx });
    },
  };
}
