import type { z } from 'zod';
import { appError, ErrorCode, validationError } from '../errors.js';

/** Parses a request body with a shared schema; anything but a JSON object is VALIDATION. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw appError(ErrorCode.VALIDATION, {
      message: 'The body must be a JSON object',
      issues: [{ path: '', message: 'Expected a JSON object' }],
    });
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw validationError(parsed.error);
  return parsed.data;
}
