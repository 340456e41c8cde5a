/** Reminder times on the user's wall clock (their IANA time zone, not the browser's). */
import { calendarDaysBetween, zonedInstant, zonedParts } from '$shared/zoned-time';

const pad = (n: number) => String(n).padStart(2, '0');

/** The value an `<input type="datetime-local">` shows for `iso` in `timeZone` (`YYYY-MM-DDTHH:MM`), or '' for none. */
export function toLocalInput(iso: string | null, timeZone: string): string {
  if (!iso) return '';
  const { date, time } = zonedParts(new Date(iso), timeZone);
  return `${date}T${pad(time.hour)}:${pad(time.minute)}`;
}

/**
 * The instant a `datetime-local` value means in `timeZone`, or null when the
 * value is empty or not one. A wall time in a DST gap moves forward by the gap.
 */
export function fromLocalInput(value: string, timeZone: string): Date | null {
  // The input's own machine format (HTML "local date and time string"), not user text.
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$/.exec(value);
  if (!m) return null;
  const instant = zonedInstant(m[1]!, { hour: Number(m[2]), minute: Number(m[3]), second: Number(m[4] ?? 0) }, timeZone);
  return Number.isNaN(instant.getTime()) ? null : instant;
}

function timeFormat(timeZone: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  try {
    return new Intl.DateTimeFormat(undefined, { ...options, timeZone });
  } catch {
    return new Intl.DateTimeFormat(undefined, options); // an unknown zone: the browser's
  }
}

/** "today 14:30", "tomorrow 09:00", "yesterday 17:00", "Mon, Dec 7, 09:00": when `iso` is, seen from `now` in `timeZone`. */
export function formatWhen(iso: string, timeZone: string, now = new Date()): string {
  const at = new Date(iso);
  const time = timeFormat(timeZone, { hour: '2-digit', minute: '2-digit' }).format(at);
  let days: number;
  try {
    days = calendarDaysBetween(zonedParts(now, timeZone).date, zonedParts(at, timeZone).date);
  } catch {
    days = Number.NaN;
  }
  if (days === 0) return `today ${time}`;
  if (days === 1) return `tomorrow ${time}`;
  if (days === -1) return `yesterday ${time}`;
  const sameYear = Math.abs(days) < 300;
  return timeFormat(timeZone, {
    weekday: 'short',
    month: 'short',
    day: 'numeric',
    year: sameYear ? undefined : 'numeric',
    hour: '2-digit',
    minute: '2-digit',
  }).format(at);
}
