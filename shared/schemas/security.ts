/**
 * Two-factor sign-in, password change and reset, the security log (PROTOCOL
 * §3b, §6.3b). A code is a 6-digit TOTP code or a recovery code; spaces and
 * hyphens are ignored and letters are lower-cased, so `123 456` and
 * `ABCDE-FGHIJ` are read as `123456` and `abcdefghij`. A code of digits only
 * that is not six digits long (`12345`, a code that lost its leading zero) is
 * `VALIDATION`, never tried against the secret.
 */
import { z } from 'zod';
import { limits } from '../limits.js';
import { pageLimit, text, timestamp } from './common.js';
import { email, password } from './auth.js';
import type { SecurityLogType } from '../constants.js';

/** A TOTP code (6 digits) or a recovery code (10 letters and digits), normalised. */
export const mfaCode = text(1, 64)
  .transform((s) => s.replace(/[\s-]/g, '').toLowerCase())
  .pipe(z.string().regex(/^(\d{6}|[a-z0-9]{10})$/, 'Must be a 6-digit code or a recovery code'));

/** AUTH-15 */
export const userPassword = z.strictObject({ currentPassword: password, newPassword: password });
/** AUTH-14: the password and a current code (when enabling, a code of the new secret). */
export const mfaConfirm = z.strictObject({ password, code: mfaCode });
/** AUTH-18: the user's own entries, newest first, older than `before`. */
export const securityLogPage = z.strictObject({ before: timestamp.optional(), limit: pageLimit.optional() });

/** `POST /login/mfa` (AUTH-13) */
export const loginMfaBody = z.strictObject({ challenge: text(1, 128), code: mfaCode });
export type LoginMfaBody = z.infer<typeof loginMfaBody>;
/** `POST /password/forgot` (AUTH-16) */
export const passwordForgotBody = z.strictObject({ email });
export type PasswordForgotBody = z.infer<typeof passwordForgotBody>;
/** `POST /password/reset` (AUTH-17) */
export const passwordResetBody = z.strictObject({ token: text(1, limits.resetTokenMax), password });
export type PasswordResetBody = z.infer<typeof passwordResetBody>;

/** `details` of the 401 `MFA_REQUIRED` answer to `POST /login` (AUTH-13). */
export interface MfaChallenge {
  challenge: string;
  /** ISO timestamp */
  expiresAt: string;
}

/** `mfa:setup`: the pending secret (base32) and its `otpauth://totp/...` URI, for a QR code. */
export interface MfaSetup {
  secret: string;
  otpauthUrl: string;
}

/** One entry of the security log as its user reads it (AUTH-18). */
export interface SecurityLogEntry {
  /** ISO timestamp */
  at: string;
  type: SecurityLogType;
  ip: string | null;
  userAgent: string | null;
  /** a device name parsed from the user agent (`Chrome on Linux`), null when unknown */
  device: string | null;
}

/** `security:new-device`: a sign-in from a device and network the account had not used before. */
export interface NewDeviceSession {
  id: string;
  /** ISO timestamp */
  createdAt: string;
  userAgent: string | null;
  device: string | null;
  ip: string | null;
}
