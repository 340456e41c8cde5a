/**
 * TOTP codes for tests, from the secret `mfa:setup` returned (the `otpauth`
 * library, as an authenticator app would). A code is accepted once (AUTH-13):
 * `freshCode` gives one of a time step after `after`, within the server's one
 * step of drift, waiting for the clock when the next steps are spent.
 */
import { Secret, TOTP } from 'otpauth';

const PERIOD_MS = 30_000;

export const stepAt = (ms = Date.now()) => Math.floor(ms / PERIOD_MS);

export function codeAt(secret: string, step: number): string {
  return new TOTP({ algorithm: 'SHA1', digits: 6, period: 30, secret: Secret.fromBase32(secret) }).generate({ timestamp: step * PERIOD_MS });
}

/**
 * A code of the earliest step after `after` that the server accepts now and for the next 30 s at least
 * (the current step or the next one), and its step; waits for the clock when both are spent.
 */
export async function freshCode(secret: string, after = -1): Promise<{ code: string; step: number }> {
  for (;;) {
    const step = Math.max(after + 1, stepAt());
    if (step <= stepAt() + 1) return { code: codeAt(secret, step), step };
    await new Promise((r) => setTimeout(r, 250));
  }
}
