import { z } from 'zod';

const NUL = '\u0000';

/** A string that may not hold U+0000 (docs/protocol.md §1), `max` in UTF-16 units. */
export const text = (min: number, max: number) =>
  z
    .string()
    .min(min, min === 1 ? 'Must not be empty' : `Must be at least ${min} characters`)
    .max(max, `Must be at most ${max} characters`)
    .refine((s) => !s.includes(NUL), 'Must not contain U+0000');

export const id = z.uuid('Must be a UUID');

/** A calendar date `YYYY-MM-DD`, from year 0001: PostgreSQL has no year 0000. */
export const calendarDate = z.iso.date('Must be a date YYYY-MM-DD').refine((d) => !d.startsWith('0000-'), 'Must be a date from year 0001');

/** An ISO 8601 timestamp. */
export const timestamp = z.iso.datetime({ offset: true, message: 'Must be an ISO 8601 timestamp' });

/** True when `tz` names an IANA time zone this runtime knows. */
export function isTimeZone(tz: string): boolean {
  if (tz.length === 0 || tz.length > 64) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export const timeZone = text(1, 64).refine(isTimeZone, 'Must be an IANA time zone name');

/** For events that take no arguments: the payload must still be an object. */
export const emptyPayload = z.strictObject({});

export const pageLimit = z.int().min(1).max(100);
