/**
 * Calendar arithmetic for recurring tasks (TASK-3). Dates are `YYYY-MM-DD`
 * calendar dates with no time zone: the user's own calendar.
 */
import type { Recurrence } from '../../../shared/schemas/tasks.js';

interface CalendarDate {
  year: number;
  /** 1..12 */
  month: number;
  /** 1..31 */
  day: number;
}

export function parseCalendarDate(date: string): CalendarDate {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!match) throw new RangeError(`Not a calendar date: ${date}`);
  return { year: Number(match[1]), month: Number(match[2]), day: Number(match[3]) };
}

export function formatCalendarDate({ year, month, day }: CalendarDate): string {
  return `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

export function daysInMonth(year: number, month: number): number {
  return utc(year, month, 0).getUTCDate();
}

/** Whole days from `from` to `to` (negative when `to` is earlier). */
export function daysBetween(from: string, to: string): number {
  const a = parseCalendarDate(from);
  const b = parseCalendarDate(to);
  return Math.round((utc(b.year, b.month - 1, b.day).getTime() - utc(a.year, a.month - 1, a.day).getTime()) / 86_400_000);
}

export function addDays(date: string, days: number): string {
  return formatCalendarDate(shiftDays(parseCalendarDate(date), days));
}

export function dayOfMonth(date: string): number {
  return parseCalendarDate(date).day;
}

/**
 * The deadline of the occurrence after the one due `deadline`, or null when it
 * would fall after `endDate` (or beyond year 9999, which no calendar date of the
 * contract can name).
 *
 * Months and years are calendar months and years: the day of the month is the
 * series' day (`seriesDay`, by default the day of `deadline`) where the target
 * month has it, else the month's last day. Carrying `seriesDay` from the first
 * occurrence is what turns 31 Jan → 28 Feb back into 31 Mar rather than 28 Mar.
 */
export function nextDeadline(
  deadline: string,
  rec: Pick<Recurrence, 'type' | 'interval' | 'endDate'>,
  seriesDay: number = dayOfMonth(deadline),
): string | null {
  const current = parseCalendarDate(deadline);
  const anchorDay = Math.min(Math.max(Math.trunc(seriesDay), 1), 31);
  let next: CalendarDate;
  switch (rec.type) {
    case 'daily':
      next = shiftDays(current, rec.interval);
      break;
    case 'weekly':
      next = shiftDays(current, rec.interval * 7);
      break;
    case 'monthly': {
      const monthIndex = current.year * 12 + (current.month - 1) + rec.interval;
      next = clamped(Math.floor(monthIndex / 12), (monthIndex % 12) + 1, anchorDay);
      break;
    }
    case 'yearly':
      next = clamped(current.year + rec.interval, current.month, anchorDay);
      break;
  }
  if (next.year > 9999) return null;
  const formatted = formatCalendarDate(next);
  if (rec.endDate !== null && formatted > rec.endDate) return null;
  return formatted;
}

function shiftDays({ year, month, day }: CalendarDate, days: number): CalendarDate {
  const d = utc(year, month - 1, day + days);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

function clamped(year: number, month: number, day: number): CalendarDate {
  return { year, month, day: Math.min(day, daysInMonth(year, month)) };
}

/** Midnight UTC of a (possibly overflowing) date; unlike `Date.UTC`, years 0–99 stay as given. */
function utc(year: number, monthIndex: number, day: number): Date {
  const d = new Date(0);
  d.setUTCFullYear(year, monthIndex, day);
  return d;
}
