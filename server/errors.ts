/** One error model (CONVENTIONS 4): every failure becomes an AppError with a wire code. */
import { randomUUID } from 'node:crypto';
import type { ZodError } from 'zod';
import { DriverException } from '@mikro-orm/core';
import { ErrorCode, httpStatusOf, type ErrorIssue, type WireError } from '../shared/errors.js';

export { ErrorCode, httpStatusOf };

export interface AppErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
  issues?: ErrorIssue[];
  retryAfterMs?: number;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  readonly issues: ErrorIssue[] | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.details = options.details;
    this.issues = options.issues;
    this.retryAfterMs = options.retryAfterMs;
  }

  get status(): number {
    return httpStatusOf[this.code];
  }

  toWire(): WireError {
    const wire: WireError = { code: this.code, message: this.message };
    if (this.issues) wire.issues = this.issues;
    if (this.retryAfterMs !== undefined) wire.retryAfterMs = Math.max(0, Math.ceil(this.retryAfterMs));
    if (this.details) wire.details = this.details;
    return wire;
  }
}

/** Fixed wire messages for codes raised without a more specific one. */
export const defaultMessages: Record<ErrorCode, string> = {
  VALIDATION: 'The request is not valid',
  UNAUTHENTICATED: 'Authentication required',
  TOKEN_EXPIRED: 'The token has expired',
  TOKEN_REVOKED: 'The token has been revoked',
  FORBIDDEN: 'Not allowed',
  NOT_FOUND: 'Not found',
  CONFLICT: 'Conflict with the current state',
  EMAIL_TAKEN: 'An account with this email already exists',
  WEAK_PASSWORD: 'The password is too weak',
  INVALID_CREDENTIALS: 'Invalid email or password',
  ACCOUNT_LOCKED: 'Too many failed logins; the account is locked for a while',
  RATE_LIMITED: 'Too many requests; slow down',
  PAYLOAD_TOO_LARGE: 'The request is too large',
  UPSTREAM: 'The assistant service failed',
  UNAVAILABLE: 'The service is temporarily unavailable',
  INTERNAL: 'Something went wrong',
  MFA_REQUIRED: 'A two-factor code is needed to finish signing in',
};

export const appError = (code: ErrorCode, options?: AppErrorOptions & { message?: string }) =>
  new AppError(code, options?.message ?? defaultMessages[code], options);

export function validationError(error: ZodError): AppError {
  const issues = error.issues.map((i) => ({
    path: i.path.map(String).join('.'),
    message: i.code === 'unrecognized_keys' ? `Unknown field(s): ${i.keys.join(', ')}` : i.message,
  }));
  return new AppError(ErrorCode.VALIDATION, defaultMessages.VALIDATION, { issues });
}

/**
 * Wraps anything thrown into an AppError. An unreachable backing service is UNAVAILABLE. Unknown errors become INTERNAL with an
 * `errorId` (also logged by the caller) and keep the original as `cause`.
 */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  // A database or Redis that cannot be reached is the client's to retry, not a bug: every path answers it alike.
  if (isUnavailableError(err)) return new AppError(ErrorCode.UNAVAILABLE, defaultMessages.UNAVAILABLE, { cause: err });
  const errorId = randomUUID();
  return new AppError(ErrorCode.INTERNAL, defaultMessages.INTERNAL, { cause: err, details: { errorId } });
}

/**
 * Codes of errors that mean a backing service could not be reached: Node's
 * socket errors, postgres.js's connection errors, and PostgreSQL's own
 * (class 08, connection exception; 57P01–57P03, shutting down or starting;
 * 53300, too many connections).
 */
const unreachableCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  '57P01',
  '57P02',
  '57P03',
  '53300',
]);

/** True for errors that mean a backing service (PostgreSQL, Redis) is unreachable: matched by class and code. */
export function isUnavailableError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code !== '') return unreachableCodes.has(code) || /^08[0-9A-Z]{3}$/.test(code);
  // Every error PostgreSQL reports carries a SQLSTATE: one without is the driver's own (its connection lost, or none to be had).
  return err instanceof DriverException;
}
