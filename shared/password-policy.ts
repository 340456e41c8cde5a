import { limits, passwordSpecials } from './limits.js';

export type PasswordPolicyName = 'seed' | 'nist';

/** The rules of AUTH-1 in their reporting order (breach is checked by the server). */
export type PasswordRule = 'length' | 'upper' | 'lower' | 'digit' | 'special';

export const passwordRuleMessages: Record<PasswordRule | 'breach', string> = {
  length: `Password must be ${limits.passwordMinCodePoints}–${limits.passwordMaxCodePoints} characters long`,
  upper: 'Password must contain an upper-case letter',
  lower: 'Password must contain a lower-case letter',
  digit: 'Password must contain a digit',
  special: `Password must contain one of ${passwordSpecials}`,
  breach: 'This password has appeared in a data breach; choose another',
};

export const nistLengthMessage = `Password must be ${limits.nistPasswordMinCodePoints}–${limits.passwordMaxCodePoints} characters long`;

/** Length in code points, as AUTH-1 counts it. */
export const codePointLength = (s: string): number => [...s].length;

/**
 * The composition rules a password fails, in AUTH-1's order. Shared so that
 * the client can show them as the user types; the server is the authority.
 */
export function failedPasswordRules(password: string, policy: PasswordPolicyName = 'seed'): PasswordRule[] {
  const length = codePointLength(password);
  if (policy === 'nist') {
    return length < limits.nistPasswordMinCodePoints || length > limits.passwordMaxCodePoints ? ['length'] : [];
  }
  const failed: PasswordRule[] = [];
  if (length < limits.passwordMinCodePoints || length > limits.passwordMaxCodePoints) failed.push('length');
  if (!/[A-Z]/.test(password)) failed.push('upper');
  if (!/[a-z]/.test(password)) failed.push('lower');
  if (!/[0-9]/.test(password)) failed.push('digit');
  if (![...password].some((c) => passwordSpecials.includes(c))) failed.push('special');
  return failed;
}
