import type { ErrorCode, WireError } from '$shared/errors';

/** An error made on this side of the wire (timeout, offline, bad answer), in the wire's shape. */
export function localError(code: ErrorCode, message: string): WireError {
  return { code, message, details: { local: true } };
}

/** "45 seconds", "3 minutes", "2 hours": rounded up, so a wait is never understated. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  if (seconds < 60) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 60) return `${minutes} minute${minutes === 1 ? '' : 's'}`;
  const hours = Math.ceil(minutes / 60);
  return `${hours} hour${hours === 1 ? '' : 's'}`;
}

/** A sentence for the user: the server's own message, plus the wait when there is one. */
export function describeError(error: WireError): string {
  switch (error.code) {
    case 'ACCOUNT_LOCKED':
      return error.retryAfterMs !== undefined
        ? `Too many failed attempts: this account is locked. Try again in ${formatDuration(error.retryAfterMs)}.`
        : 'Too many failed attempts: this account is locked for a while.';
    case 'RATE_LIMITED':
      return error.retryAfterMs !== undefined
        ? `Too many requests. Try again in ${formatDuration(error.retryAfterMs)}.`
        : 'Too many requests. Wait a moment and try again.';
    case 'INVALID_CREDENTIALS':
      return 'The email or password is not right.';
    case 'EMAIL_TAKEN':
      return 'An account with this email already exists. Log in instead.';
    case 'VALIDATION':
      if (error.issues && error.issues.length > 0) {
        return error.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
      }
      return error.message;
    case 'INTERNAL': {
      const id = typeof error.details?.errorId === 'string' ? ` (reference ${error.details.errorId})` : '';
      return `Something went wrong on the server${id}.`;
    }
    default:
      return error.message;
  }
}
