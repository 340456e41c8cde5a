/**
 * AUTH-13: TOTP per RFC 6238 (SHA-1, 30 s, 6 digits, one step of drift either
 * way) with the `otpauth` library, and the recovery codes of AUTH-14.
 */
import { randomInt } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import { limits } from '../../../shared/limits.js';

const PERIOD_SECONDS = 30;
const ISSUER = 'Sam';

function totp(secret: string, label = ''): TOTP {
  return new TOTP({ issuer: ISSUER, label, algorithm: 'SHA1', digits: 6, period: PERIOD_SECONDS, secret: Secret.fromBase32(secret) });
}

/** A new secret: 160 random bits (RFC 4226's recommendation), base32. */
export const newTotpSecret = (): string => new Secret({ size: 20 }).base32;

/** The `otpauth://totp/...` URI an authenticator app reads from a QR code. */
export const totpUri = (secret: string, accountName: string): string => totp(secret, accountName).toString();

/** The time step a 6-digit `code` is valid for at `now` (± one step), or null when it is not valid. */
export function totpStep(secret: string, code: string, now = Date.now()): number | null {
  if (!/^\d{6}$/.test(code)) return null;
  const delta = totp(secret).validate({ token: code, timestamp: now, window: 1 });
  return delta === null ? null : Math.floor(now / 1000 / PERIOD_SECONDS) + delta;
}

/** Letters and digits that cannot be mistaken for one another (no 0/o, 1/l/i). */
const RECOVERY_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';

/** Ten new recovery codes as shown to the user (`abcde-fghij`, about 49 random bits each). */
export function newRecoveryCodes(): string[] {
  return Array.from({ length: limits.recoveryCodes }, () => {
    const chars = Array.from({ length: 10 }, () => RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)]).join('');
    return `${chars.slice(0, 5)}-${chars.slice(5)}`;
  });
}

/** A recovery code as stored and compared: the form `mfaCode` normalises to (no hyphen, lower case). */
export const normalRecoveryCode = (code: string): string => code.replace(/[\s-]/g, '').toLowerCase();
