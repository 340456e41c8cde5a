/**
 * JSON-lines logging on stdout (pino). GEN-1: no password, hash, refresh token or
 * whole JWT is ever logged; the redaction below is a second line of defence,
 * the first is never passing them to the logger.
 */
import { pino, type Logger, type DestinationStream } from 'pino';
import { DriverException } from '@mikro-orm/core';
import { securityLogTypes } from '../shared/constants.js';

export type { Logger };

/** The JSON log's security events (PROTOCOL §7): the durable security log's (AUTH-18), and those only logged. */
export const securityEventTypes = [
  ...securityLogTypes,
  'signup',
  'rate_limited',
  'token_revoked',
  'socket_auth_failed',
  'blacklist_unavailable',
  'session_revoked_by_user',
  'account_deleted',
  'admin_action',
  'mfa_challenged',
  'mail_unavailable',
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
      serializers: { err: (err: unknown) => pino.stdSerializers.err(withoutStatements(err) as Error) },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination,
  );
}

const LEFT_OUT = '(statement left out)';

/**
 * GEN-1: MikroORM writes a failed statement into its error's message and stack with every value inlined (a
 * password hash in a failed INSERT into users, say), as `<statement> - <what PostgreSQL said>`. Logged errors,
 * and the errors they were caused by, keep what PostgreSQL said and lose the statement. Others pass unchanged.
 */
export function withoutStatements(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error) || depth > 5) return err;
  const cause = withoutStatements(err.cause, depth + 1);
  const cut = err instanceof DriverException ? err.message.lastIndexOf(' - ') : -1;
  if (cut < 0 && cause === err.cause) return err;
  const copy = Object.assign(Object.create(Object.getPrototypeOf(err) as object) as Error, err);
  const message = cut < 0 ? err.message : `${LEFT_OUT} - ${err.message.slice(cut + 3)}`;
  const own = (value: unknown) => ({ value, writable: true, configurable: true, enumerable: false });
  Object.defineProperties(copy, {
    message: own(message),
    stack: own(err.stack?.split(err.message).join(message)),
    ...(err.cause === undefined ? {} : { cause: own(cause) }),
  });
  return copy;
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
