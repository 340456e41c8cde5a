/**
 * Quick-add in plain words (issue 20): `call mom fri 5pm #family !4 every
 * week` becomes a task's title, deadline, reminder, project, intensity and
 * recurrence, without the model. Dates and times are chrono-node's; they are
 * read on the user's wall clock (their IANA zone, not the browser's) and
 * turned into instants with `zoned-time`, so a date past a DST change keeps
 * the time of day the user wrote.
 */
import { casual } from 'chrono-node/en';
import type { ParsedResult } from 'chrono-node/en';
import { limits } from '$shared/limits';
import type { Recurrence } from '$shared/schemas/tasks';
import { addCalendarDays, zonedInstant, zonedParts } from '$shared/zoned-time';

export type QuickAddPartKind = 'title' | 'deadline' | 'time' | 'project' | 'intensity' | 'recurrence';

/** One thing the parser understood, for the preview. */
export interface QuickAddPart {
  kind: QuickAddPartKind;
  /** what it means, in words: `Friday, Mar 6`, `17:00`, `#family`, `every week` */
  label: string;
  /** the words of the input it came from (the title's is the title) */
  source: string;
}

export interface QuickAdd {
  title: string;
  /** `YYYY-MM-DD` in the user's time zone, or null */
  deadline: string | null;
  /** ISO 8601 instant, set only when a time of day was given */
  remindAt: string | null;
  project: string | null;
  /** 1..5 */
  intensity: number | null;
  recurrence: Recurrence | null;
  parts: QuickAddPart[];
}

export interface QuickAddOptions {
  /** the reference instant: "fri" is the Friday after it */
  now: Date;
  /** the user's IANA time zone */
  timeZone: string;
}

/** Longer input is taken as a plain title: parsing it on every keystroke would stall the page. */
export const quickAddMaxLength = 1_000;

/** REM-7's bound. */
const reminderMaxAheadMs = limits.remindAtMaxAheadMs;

type Unit = 'day' | 'week' | 'month' | 'year';
const typeOfUnit: Record<Unit, Recurrence['type']> = { day: 'daily', week: 'weekly', month: 'monthly', year: 'yearly' };
const adverbs: Record<string, Recurrence['type']> = { daily: 'daily', everyday: 'daily', weekly: 'weekly', monthly: 'monthly', yearly: 'yearly', annually: 'yearly' };

// Word boundaries that know letters beyond ASCII; every pattern is linear (no nested repetition).
const B = '(?<![\\p{L}\\p{N}])';
const E = '(?![\\p{L}\\p{N}])';
const weekday = '(?:monday|mon|tuesday|tues|tue|wednesday|wed|thursday|thurs|thur|thu|friday|fri|saturday|sat|sunday|sun)';
const everyUnit = new RegExp(`${B}every\\s+(?:(other|\\d{1,4})\\s+)?(day|week|month|year)s?${E}`, 'iu');
/** `every monday`: weekly; only `every ` is taken, the weekday is left to chrono for the deadline */
const everyWeekday = new RegExp(`${B}every\\s+(?=${weekday}${E})`, 'iu');
const adverb = new RegExp(`${B}(daily|everyday|weekly|monthly|yearly|annually)${E}`, 'iu');
const projectTag = /(?<!\S)#(\p{L}[\p{L}\p{N}_-]*)(?=$|[\s,;.!?)])/u;
const intensityTag = /(?<!\S)!([1-5])(?=$|[\s,;.!?)])/u;
/** a word that only joined the date to the title: `call mom by friday` */
const connector = /(?<!\S)(?:by|due|on|at)\s*$/i;

interface Span {
  start: number;
  end: number;
}

/** Parses `text`; what it does not understand stays in the title. Never throws. */
export function parseQuickAdd(text: string, { now, timeZone }: QuickAddOptions): QuickAdd {
  const plain = text.trim();
  const result: QuickAdd = { title: plain, deadline: null, remindAt: null, project: null, intensity: null, recurrence: null, parts: [] };
  if (plain === '') return result;
  if (text.length > quickAddMaxLength) {
    result.parts.push({ kind: 'title', label: plain, source: plain });
    return result;
  }
  const zone = knownZone(timeZone);
  const taken: Span[] = [];
  const tagParts: QuickAddPart[] = [];

  const project = projectTag.exec(text);
  if (project && project[1]!.length <= limits.taskProjectMax) {
    result.project = project[1]!;
    taken.push({ start: project.index, end: project.index + project[0].length });
    tagParts.push({ kind: 'project', label: `#${result.project}`, source: project[0] });
  }
  const intensity = intensityTag.exec(text);
  if (intensity) {
    result.intensity = Number(intensity[1]);
    taken.push({ start: intensity.index, end: intensity.index + intensity[0].length });
    tagParts.push({ kind: 'intensity', label: `intensity ${result.intensity}`, source: intensity[0] });
  }
  const recurrence = findRecurrence(blank(text, taken));
  if (recurrence) {
    result.recurrence = recurrence.value;
    taken.push(recurrence.span);
    tagParts.push({ kind: 'recurrence', label: describeRecurrence(recurrence.value), source: recurrence.source.trim() });
  }

  // chrono reads the text with the tokens blanked out (same length, so its indices are the input's), which
  // also lets `fri #family 5pm` read as one date and keeps `every 2 days` from reading as "in 2 days".
  const masked = blank(text, taken);
  const found = readDate(masked, now, zone);
  const dateParts: QuickAddPart[] = [];
  if (found) {
    result.deadline = found.date;
    dateParts.push({ kind: 'deadline', label: describeDate(found.date, now, zone), source: found.source });
    if (found.instant && found.instant.getTime() - now.getTime() <= reminderMaxAheadMs) {
      result.remindAt = found.instant.toISOString();
      const { hour, minute } = zonedParts(found.instant, zone).time;
      dateParts.push({ kind: 'time', label: `${pad(hour)}:${pad(minute)}`, source: found.source });
    }
    const before = connector.exec(masked.slice(0, found.span.start));
    taken.push(before ? { start: before.index, end: found.span.end } : found.span);
  }

  const title = blank(text, taken)
    .replace(/\s+/g, ' ')
    .replace(/^[\s,;:–-]+|[\s,;:–-]+$/g, '');
  result.title = title === '' ? plain : title;
  result.parts = [{ kind: 'title', label: result.title, source: result.title }, ...dateParts, ...tagParts];
  return result;
}

function findRecurrence(text: string): { value: Recurrence; span: Span; source: string } | null {
  const candidates: { value: Recurrence; match: RegExpExecArray }[] = [];
  const unit = everyUnit.exec(text);
  if (unit) {
    const n = unit[1] === undefined ? 1 : unit[1].toLowerCase() === 'other' ? 2 : Number(unit[1]);
    if (n >= 1 && n <= 1000) candidates.push({ value: { type: typeOfUnit[unit[2]!.toLowerCase() as Unit], interval: n, endDate: null }, match: unit });
  }
  const day = everyWeekday.exec(text);
  if (day) candidates.push({ value: { type: 'weekly', interval: 1, endDate: null }, match: day });
  const word = adverb.exec(text);
  if (word) candidates.push({ value: { type: adverbs[word[1]!.toLowerCase()]!, interval: 1, endDate: null }, match: word });
  const first = candidates.sort((a, b) => a.match.index - b.match.index)[0];
  if (!first) return null;
  return { value: first.value, span: { start: first.match.index, end: first.match.index + first.match[0].length }, source: first.match[0] };
}

interface FoundDate {
  /** `YYYY-MM-DD` on the user's calendar */
  date: string;
  /** when a time of day was given */
  instant: Date | null;
  span: Span;
  source: string;
}

function readDate(masked: string, now: Date, timeZone: string): FoundDate | null {
  let results: ParsedResult[];
  try {
    results = casual.parse(masked, { instant: now, timezone: offsetMinutes(now, timeZone) }, { forwardDate: true });
  } catch {
    return null;
  }
  const r = results[0];
  if (!r) return null;
  const s = r.start;
  const span = { start: r.index, end: r.index + r.text.length };
  // An explicit zone ("5pm EST") or a duration ("in 3 hours") names an instant; chrono computes it exactly.
  if (s.isCertain('timezoneOffset')) {
    const instant = s.date();
    if (Number.isNaN(instant.getTime())) return null;
    return { date: zonedParts(instant, timeZone).date, instant: s.isCertain('hour') ? instant : null, span, source: r.text };
  }
  // Otherwise chrono's components are the wall clock at the reference offset: the date is taken as written,
  // and the time of day is placed on that date in the user's zone, whatever offset DST gives it there.
  const year = s.get('year');
  const month = s.get('month');
  const day = s.get('day');
  if (year === null || month === null || day === null || year < 1 || year > 9999) return null;
  let date = `${String(year).padStart(4, '0')}-${pad(month)}-${pad(day)}`;
  if (!s.isCertain('hour')) return { date, instant: null, span, source: r.text };
  const time = { hour: s.get('hour') ?? 0, minute: s.get('minute') ?? 0 };
  let instant = zonedInstant(date, time, timeZone);
  // "fri 5pm" typed on a Friday evening means next Friday (chrono keeps a weekday's own day as "forward").
  if (s.isCertain('weekday') && !s.isCertain('day') && instant.getTime() < now.getTime()) {
    date = addCalendarDays(date, 7);
    instant = zonedInstant(date, time, timeZone);
  }
  if (Number.isNaN(instant.getTime())) return null;
  return { date, instant, span, source: r.text };
}

/** The zone's offset from UTC at `now`, in minutes, which is the form of zone chrono's reference takes. */
function offsetMinutes(now: Date, timeZone: string): number {
  const { date, time } = zonedParts(now, timeZone);
  const wall = Date.parse(`${date}T${pad(time.hour)}:${pad(time.minute)}:${pad(time.second)}Z`);
  return Math.round((wall - now.getTime()) / 60_000);
}

function knownZone(timeZone: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return timeZone;
  } catch {
    return Intl.DateTimeFormat().resolvedOptions().timeZone;
  }
}

/** `text` with the spans replaced by spaces, keeping every other character where it was. */
function blank(text: string, spans: Span[]): string {
  let out = '';
  let at = 0;
  for (const { start, end } of [...spans].sort((a, b) => a.start - b.start)) {
    if (end <= at) continue;
    const from = Math.max(start, at);
    out += text.slice(at, from) + ' '.repeat(end - from);
    at = end;
  }
  return out + text.slice(at);
}

const pad = (n: number) => String(n).padStart(2, '0');

function describeDate(date: string, now: Date, timeZone: string): string {
  const sameYear = date.slice(0, 4) === zonedParts(now, timeZone).date.slice(0, 4);
  return new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', weekday: 'long', month: 'short', day: 'numeric', year: sameYear ? undefined : 'numeric' }).format(
    new Date(`${date}T00:00:00Z`),
  );
}

const unitOfType: Record<Recurrence['type'], Unit> = { daily: 'day', weekly: 'week', monthly: 'month', yearly: 'year' };

export function describeRecurrence(r: Recurrence): string {
  const unit = unitOfType[r.type];
  return r.interval === 1 ? `every ${unit}` : `every ${r.interval} ${unit}s`;
}
