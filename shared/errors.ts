import { z } from 'zod';

/** The closed set of error codes of the wire contract (docs/protocol.md §1). */
export const ErrorCode = {
  VALIDATION: 'VALIDATION',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  TOKEN_EXPIRED: 'TOKEN_EXPIRED',
  TOKEN_REVOKED: 'TOKEN_REVOKED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  EMAIL_TAKEN: 'EMAIL_TAKEN',
  WEAK_PASSWORD: 'WEAK_PASSWORD',
  INVALID_CREDENTIALS: 'INVALID_CREDENTIALS',
  ACCOUNT_LOCKED: 'ACCOUNT_LOCKED',
  RATE_LIMITED: 'RATE_LIMITED',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UPSTREAM: 'UPSTREAM',
  UNAVAILABLE: 'UNAVAILABLE',
  INTERNAL: 'INTERNAL',
  /** (1.1) the password was right; `POST /login/mfa` with `details.challenge` finishes the login */
  MFA_REQUIRED: 'MFA_REQUIRED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const errorCodes = Object.values(ErrorCode) as [ErrorCode, ...ErrorCode[]];

/** HTTP status for each error code, the one table used by REST answers. */
export const httpStatusOf: Record<ErrorCode, number> = {
  VALIDATION: 400,
  WEAK_PASSWORD: 400,
  UNAUTHENTICATED: 401,
  TOKEN_EXPIRED: 401,
  TOKEN_REVOKED: 401,
  INVALID_CREDENTIALS: 401,
  MFA_REQUIRED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  EMAIL_TAKEN: 409,
  PAYLOAD_TOO_LARGE: 413,
  ACCOUNT_LOCKED: 423,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UPSTREAM: 502,
  UNAVAILABLE: 503,
};

/** One offending field: `path` is the dot-joined path (`patch.title`). */
export interface ErrorIssue {
  path: string;
  message: string;
}

/** The error shape of REST bodies and socket acks alike. */
export interface WireError {
  code: ErrorCode;
  message: string;
  issues?: ErrorIssue[];
  /** ms until the caller may try again (RATE_LIMITED, ACCOUNT_LOCKED) */
  retryAfterMs?: number;
  details?: Record<string, unknown>;
}

export const wireErrorSchema = z.object({
  code: z.enum(errorCodes),
  message: z.string(),
  issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  retryAfterMs: z.number().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});

/** Every socket ack: success with data, or a wire error. */
export type Ack<T> = { ok: true; data: T } | { ok: false; error: WireError };
