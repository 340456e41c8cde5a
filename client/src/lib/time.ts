/** `YYYY-MM-DD` of `date` in the IANA time zone `timeZone`. */
export function calendarDateIn(timeZone: string, date = new Date()): string {
  try {
    return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(date);
  } catch {
    return date.toISOString().slice(0, 10);
  }
}

/** `YYYY-MM-DD` plus `days` calendar days. */
export function addDays(day: string, days: number): string {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/** Whole days from `from` to `to` (both `YYYY-MM-DD`). */
export function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}

/** A deadline as a task's chip says it, seen from `today`: "Due today", "Due Dec 8", "3 days overdue". */
export function dueLabel(day: string, today: string): string {
  const diff = daysBetween(today, day);
  if (diff === 0) return 'Due today';
  if (diff === 1) return 'Due tomorrow';
  if (diff === -1) return 'Due yesterday';
  if (diff < 0) return `${-diff} days overdue`;
  const d = new Date(`${day}T00:00:00Z`);
  return `Due ${d.toLocaleDateString(undefined, { timeZone: 'UTC', month: 'short', day: 'numeric', year: diff > 300 ? 'numeric' : undefined })}`;
}

/** Date and time of `iso`, on the wall clock of `timeZone` (an IANA name) when given, else the browser's. */
export function formatTime(iso: string, timeZone?: string): string {
  const d = new Date(iso);
  try {
    return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short', timeZone });
  } catch {
    return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }); // an unknown zone: the browser's
  }
}

/** A v4 UUID; `randomUUID` exists only in secure contexts, so plain-HTTP development gets the fallback. */
export function newId(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
