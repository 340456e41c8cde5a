import { z } from 'zod';
import { limits } from '../limits.js';
import { text, timeZone } from './common.js';

/** AUTH-2: emails are trimmed and lower-cased before use. */
export const email = text(1, limits.emailMax + 64)
  .transform((s) => s.trim().toLowerCase())
  .pipe(z.email('Must be an email address').max(limits.emailMax));

/**
 * A password as sent. Length rules are WEAK_PASSWORD (AUTH-1), checked by the
 * policy, so this only bounds what is parsed at all.
 */
export const password = text(1, 1024);

export const signupBody = z.strictObject({
  email,
  password,
  fullName: text(0, limits.fullNameMax).optional(),
  timezone: timeZone.optional(),
});
export type SignupBody = z.infer<typeof signupBody>;

export const loginBody = z.strictObject({ email, password });
export type LoginBody = z.infer<typeof loginBody>;

export type Role = 'user' | 'admin';

/** The user as the wire shows it. */
export interface UserView {
  id: string;
  email: string;
  fullName: string;
  /** IANA time zone name */
  timezone: string;
  role: Role;
  /** ISO timestamp */
  createdAt: string;
  /** (1.1) two-factor sign-in is on (AUTH-13) */
  mfaEnabled: boolean;
}

/** `POST /signup` and `POST /login` answer this (and set the refresh cookie). */
export interface AuthResult {
  user: UserView;
  accessToken: string;
  /** ISO timestamp of the access token's `exp` */
  expiresAt: string;
}

/** `POST /refresh` answers this (and rotates the refresh cookie). */
export interface RefreshResult {
  accessToken: string;
  expiresAt: string;
}

export { authBasePath, refreshCookieName } from '../constants.js';
