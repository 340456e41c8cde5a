/**
 * The breach check of AUTH-1: a k-anonymity range API (only the first five hex
 * characters of the SHA-1 leave the process) and, when it is off or fails, the
 * bundled list of common passwords from @zxcvbn-ts/language-common (~49,000).
 */
import { createHash } from 'node:crypto';
import { dictionary } from '@zxcvbn-ts/language-common';
import type { Logger } from '../../logger.js';

export interface BreachChecker {
  isBreached(password: string): Promise<boolean>;
}

let commonPasswords: Set<string> | undefined;
function common(): Set<string> {
  commonPasswords ??= new Set((dictionary['passwords-common'] as string[]).map((p) => p.toLowerCase()));
  return commonPasswords;
}

export function isCommonPassword(password: string): boolean {
  return common().has(password.toLowerCase());
}

export function createBreachChecker(options: {
  apiUrl: string | null;
  logger: Logger;
  timeoutMs?: number;
  fetchImpl?: typeof fetch;
}): BreachChecker {
  const { apiUrl, logger } = options;
  const timeoutMs = options.timeoutMs ?? 1_500;
  const doFetch = options.fetchImpl ?? fetch;
  return {
    async isBreached(password) {
      if (isCommonPassword(password)) return true;
      if (!apiUrl) return false;
      const sha1 = createHash('sha1').update(password, 'utf8').digest('hex').toUpperCase();
      const prefix = sha1.slice(0, 5);
      const suffix = sha1.slice(5);
      try {
        const res = await doFetch(`${apiUrl}/range/${prefix}`, {
          headers: { 'Add-Padding': 'true', 'User-Agent': 'sam-password-check' },
          signal: AbortSignal.timeout(timeoutMs),
        });
        if (!res.ok) throw new Error(`range API answered ${res.status}`);
        const body = await res.text();
        for (const line of body.split('\n')) {
          const [hashSuffix, count] = line.trim().split(':');
          // Padding lines carry a count of 0 and must be ignored.
          if (hashSuffix === suffix && Number(count) > 0) return true;
        }
        return false;
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'breach range API unavailable; used the bundled list');
        return false;
      }
    },
  };
}
