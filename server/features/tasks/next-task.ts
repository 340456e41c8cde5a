/** The "what should I do next" pick (TASK-5), a pure function of the tasks and the clock. */
import type { IntensityClass, Task } from '../../../shared/schemas/tasks.js';
import { daysBetween } from './recurrence.js';

export type ScoredTask = Pick<Task, 'id' | 'deadline' | 'intensity' | 'status' | 'dependencies' | 'createdAt'>;

const dateFormats = new Map<string, Intl.DateTimeFormat>();

/** A cached formatter of calendar dates in `timeZone` (building one costs more than using it); throws for an unknown zone. */
export function dateFormatIn(timeZone: string): Intl.DateTimeFormat {
  let format = dateFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    dateFormats.set(timeZone, format);
  }
  return format;
}

/** The calendar date `YYYY-MM-DD` at `now` in the IANA time zone `timeZone`. */
export function calendarDateIn(timeZone: string, now: Date): string {
  const parts = dateFormatIn(timeZone).formatToParts(now);
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return `${part('year').padStart(4, '0')}-${part('month')}-${part('day')}`;
}

/** Points for how soon the deadline is, `today` being the user's calendar date. */
export function deadlinePoints(deadline: string | null, today: string): number {
  if (deadline === null) return 0;
  const daysLeft = daysBetween(today, deadline);
  if (daysLeft < 0) return 100;
  if (daysLeft === 0) return 90;
  if (daysLeft === 1) return 80;
  if (daysLeft <= 3) return 70;
  if (daysLeft <= 7) return 50;
  if (daysLeft <= 14) return 30;
  return 10;
}

export function scoreTask(task: Pick<ScoredTask, 'deadline' | 'intensity' | 'status'>, today: string): number {
  return deadlinePoints(task.deadline, today) + 5 * task.intensity + (task.status === 'in_progress' ? 15 : 0);
}

export function matchesIntensity(intensity: number, wanted: IntensityClass | undefined): boolean {
  switch (wanted) {
    case undefined:
      return true;
    case 'light':
      return intensity <= 2;
    case 'medium':
      return intensity === 3;
    case 'heavy':
      return intensity >= 4;
  }
}

/**
 * Picks the highest-scoring open task. `tasks` should be all of the user's
 * tasks: the completed ones are what unblock dependants. A dependency that is
 * not among them (purged) does not block.
 */
export function pickNextTask<T extends ScoredTask>(
  tasks: readonly T[],
  options: { now: Date; timeZone: string; intensity?: IntensityClass | undefined },
): { task: T; score: number } | null {
  const today = calendarDateIn(options.timeZone, options.now);
  const statusOf = new Map(tasks.map((t) => [t.id, t.status]));
  const unblocked = (t: T) => t.dependencies.every((dep) => (statusOf.get(dep) ?? 'completed') === 'completed');
  let best: { task: T; score: number } | null = null;
  for (const task of tasks) {
    if (task.status === 'completed' || task.status === 'waiting_on' || task.status === 'deleted') continue;
    if (!matchesIntensity(task.intensity, options.intensity) || !unblocked(task)) continue;
    const candidate = { task, score: scoreTask(task, today) };
    if (best === null || ranksBefore(candidate, best)) best = candidate;
  }
  return best;
}

function ranksBefore(a: { task: ScoredTask; score: number }, b: { task: ScoredTask; score: number }): boolean {
  if (a.score !== b.score) return a.score > b.score;
  const da = a.task.deadline;
  const db = b.task.deadline;
  if (da !== db) {
    if (da === null) return false;
    if (db === null) return true;
    return da < db;
  }
  const ca = Date.parse(a.task.createdAt);
  const cb = Date.parse(b.task.createdAt);
  if (ca !== cb) return ca < cb;
  return a.task.id < b.task.id;
}
