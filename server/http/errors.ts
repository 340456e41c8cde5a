/** The one JSON error handler (GEN-1): a wire error, never a stack trace. */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { AppError, appError, ErrorCode, isUnavailableError, toAppError } from '../errors.js';
import type { Logger } from '../logger.js';

/** Maps body-parser failures and connectivity failures to wire errors. */
function classify(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as { type?: string; status?: number } | null;
  if (e?.type === 'entity.too.large') return appError(ErrorCode.PAYLOAD_TOO_LARGE);
  if (e?.type === 'entity.parse.failed' || e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') {
    return appError(ErrorCode.VALIDATION, { message: 'The body must be valid JSON' });
  }
  if (isUnavailableError(err)) return appError(ErrorCode.UNAVAILABLE, { cause: err });
  return toAppError(err);
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const appErr = classify(err);
    if (appErr.code === ErrorCode.INTERNAL) {
      logger.error({ err: appErr.cause ?? err, errorId: appErr.details?.errorId, method: req.method, path: req.path }, 'unhandled error');
    } else if (appErr.code === ErrorCode.UNAVAILABLE) {
      logger.warn({ err: (appErr.cause as Error | undefined)?.message, path: req.path }, 'dependency unavailable');
    }
    if (res.headersSent) return;
    if (appErr.retryAfterMs !== undefined) res.setHeader('Retry-After', String(Math.max(1, Math.ceil(appErr.retryAfterMs / 1000))));
    res.status(appErr.status).json(appErr.toWire());
  };
}

export const notFound: RequestHandler = (_req, _res, next) => next(appError(ErrorCode.NOT_FOUND));
