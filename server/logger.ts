/**
 * JSON-lines logging on stdout (pino). GEN-1: no password, hash, refresh token or
 * whole JWT is ever logged; the redaction below is a second line of defence,
 * the first is never passing them to the logger.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export const securityEventTypes = [
  'signup',
  'login_succeeded',
  'login_failed',
  'account_locked',
  'rate_limited',
  'token_revoked',
  'refresh_reuse_detected',
  'socket_auth_failed',
  'blacklist_unavailable',
  'session_revoked_by_user',
  'account_deleted',
  'admin_action',
  'admin_granted',
  'admin_revoked',
] as const;
export type SecurityEventType = (typeof securityEventTypes)[number];

const redactPaths = [
  'password',
  'passwordHash',
  'token',
  'accessToken',
  'refreshToken',
  'authorization',
  'cookie',
  '*.password',
  '*.passwordHash',
  '*.token',
  '*.accessToken',
  '*.refreshToken',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
];

export function createLogger(options: { level: string; nodeId: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      base: { node: options.nodeId },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactPaths, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination,
  );
}

/** A security event: `{ event: "security", type, ... }` (PROTOCOL §7). */
export function securityLog(logger: Logger, type: SecurityEventType, fields: Record<string, unknown> = {}): void {
  const level = type === 'login_succeeded' || type === 'signup' ? 'info' : 'warn';
  logger[level]({ event: 'security', type, ...fields }, type);
}

/** Masks an email for logs: keeps the domain and the first letter. */
export function maskEmail(email: string): string {
  const at = email.indexOf('@');
  if (at <= 0) return '***';
  return `${email[0]}***${email.slice(at)}`;
}
