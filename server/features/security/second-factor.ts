/**
 * AUTH-13/14: checks a second-factor code against a user's TOTP secret or
 * recovery codes, spending what it accepts: the TOTP time step (so a code is
 * accepted at most once, on every node) or the recovery code. It does not
 * count failures; the auth service wraps it in the email's lockout (AUTH-4).
 */
import type { SecretBox } from './secret-box.js';
import type { SecurityRepository } from './security.repository.js';
import { normalRecoveryCode, totpStep } from './totp.js';

export type SecondFactorKind = 'totp' | 'recovery';

export interface SecondFactor {
  /** Which kind of code was accepted (and spent), or null. `sealedSecret` is the user's `mfa_secret`. */
  check(userId: string, sealedSecret: string, code: string): Promise<SecondFactorKind | null>;
  /** The step a code of a secret not yet in use is valid for (enabling: a code of the new secret), or null. */
  stepOfPending(userId: string, sealedSecret: string, code: string): number | null;
  /** The plain secret of a sealed one. */
  open(userId: string, sealedSecret: string): string;
  seal(userId: string, secret: string): string;
  hashRecoveryCode(code: string): string;
}

export function createSecondFactor(deps: { repository: SecurityRepository; box: SecretBox; codeHash: (value: string) => string }): SecondFactor {
  const { repository, box, codeHash } = deps;
  return {
    async check(userId, sealedSecret, code) {
      if (/^\d{6}$/.test(code)) {
        const step = totpStep(box.open(sealedSecret, userId), code);
        return step !== null && (await repository.useStep(userId, step)) ? 'totp' : null;
      }
      return (await repository.useRecoveryCode(userId, codeHash(normalRecoveryCode(code)))) ? 'recovery' : null;
    },
    stepOfPending(userId, sealedSecret, code) {
      return totpStep(box.open(sealedSecret, userId), code);
    },
    open: (userId, sealedSecret) => box.open(sealedSecret, userId),
    seal: (userId, secret) => box.seal(secret, userId),
    hashRecoveryCode: (code) => codeHash(normalRecoveryCode(code)),
  };
}
