/**
 * Wall-clock time in a user's IANA time zone, for reminders (REM-6, snooze
 * "tomorrow 9:00") on the server and in the client alike. Built on
 * `@date-fns/tz`: a wall time that falls in a DST gap moves forward by the
 * gap (02:30 on the spring-forward night is 03:30); one that occurs twice
 * (the autumn overlap) is the first of the two.
 */
import { TZDate } from '@date-fns/tz';

/** A wall-clock time of day. */
export interface WallTime {
  hour: number;
  minute: number;
  second?: number;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** The instant at which the wall clock in `timeZone` shows `date` (`YYYY-MM-DD`) at `time`. */
export function zonedInstant(date: string, time: WallTime, timeZone: string): Date {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  return new Date(new TZDate(y, m - 1, d, time.hour, time.minute, time.second ?? 0, timeZone).getTime());
}

/** The calendar date (`YYYY-MM-DD`) and wall time that `instant` shows in `timeZone`. */
export function zonedParts(instant: Date, timeZone: string): { date: string; time: Required<WallTime> } {
  const z = new TZDate(instant.getTime(), timeZone);
  return {
    date: `${String(z.getFullYear()).padStart(4, '0')}-${pad(z.getMonth() + 1)}-${pad(z.getDate())}`,
    time: { hour: z.getHours(), minute: z.getMinutes(), second: z.getSeconds() },
  };
}

/** `date` plus `days` calendar days (`YYYY-MM-DD`). */
export function addCalendarDays(date: string, days: number): string {
  const t = Date.parse(`${date}T00:00:00Z`) + days * 86_400_000;
  return new Date(t).toISOString().slice(0, 10);
}

/** Whole calendar days from `from` to `to` (both `YYYY-MM-DD`). */
export function calendarDaysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}

/** The next day's `time` in `timeZone` after `now` ("tomorrow 9:00"). */
export function tomorrowAt(now: Date, time: WallTime, timeZone: string): Date {
  return zonedInstant(addCalendarDays(zonedParts(now, timeZone).date, 1), time, timeZone);
}

/**
 * REM-6: the reminder of a recurring task's next occurrence, at the same
 * offset before its deadline as `remindAt` was before `deadline`, counted on
 * the user's wall clock (so "the day before at 17:00" stays that across DST).
 */
export function shiftReminder(remindAt: Date, deadline: string, nextDeadline: string, timeZone: string): Date {
  const { date, time } = zonedParts(remindAt, timeZone);
  const daysBefore = calendarDaysBetween(date, deadline);
  return zonedInstant(addCalendarDays(nextDeadline, -daysBefore), time, timeZone);
}
