/**
 * The rules of task changes (PROTOCOL §6.1), as pure functions of the stored
 * tasks, the request and the clock: no storage, no broadcast. Each returns the
 * new record(s), or `null` when the request changes nothing (a safe retry),
 * and throws an `AppError` when the request is refused. Every changed record
 * takes the user's next change sequence number from `ctx.nextSeq()` (SYNC-1)
 * and a version one higher (TASK-2).
 */
import { randomUUID } from 'node:crypto';
import { AppError, appError, ErrorCode } from '../../errors.js';
import type { Recurrence, Task, TaskCreate, TaskPatch, TaskStatus } from '../../../shared/schemas/tasks.js';
import type { ReminderWrites, TaskRecord } from './tasks.repository.js';
import { shiftReminder } from '../../../shared/zoned-time.js';
import { guessIntensity, waitingOnFromTitle } from './intensity.js';
import { dateFormatIn } from './next-task.js';
import { dayOfMonth, nextDeadline } from './recurrence.js';

export interface ChangeContext {
  now: Date;
  /** the user's time zone (a recurring task's next reminder keeps its wall-clock offset, REM-6) */
  timeZone: string;
  /** the user's next change sequence number */
  nextSeq(): number;
}

/** Wire shapes already made: a change's record goes out in its ack and in its event. */
const wireShapes = new WeakMap<TaskRecord, Task>();

/** The wire shape of a task (made once per record; records are never altered). */
export function toWireTask(t: TaskRecord): Task {
  let wire = wireShapes.get(t);
  if (!wire) {
    wire = wireShape(t);
    wireShapes.set(t, wire);
  }
  return wire;
}

function wireShape(t: TaskRecord): Task {
  return {
    id: t.id,
    title: t.title,
    description: t.description,
    deadline: t.deadline,
    intensity: t.intensity,
    status: t.status,
    project: t.project,
    waitingOn: t.waitingOn,
    dependencies: [...t.dependencies],
    recurrence: t.recurrence ? wireRecurrence(t.recurrence) : null,
    version: t.version,
    seq: t.seq,
    createdAt: t.createdAt.toISOString(),
    updatedAt: t.updatedAt.toISOString(),
    completedAt: t.completedAt ? t.completedAt.toISOString() : null,
    deletedAt: t.deletedAt ? t.deletedAt.toISOString() : null,
    remindAt: t.remindAt ? t.remindAt.toISOString() : null,
  };
}

function wireRecurrence(r: Recurrence): Recurrence {
  return { type: r.type, interval: r.interval, endDate: r.endDate ?? null };
}

export const taskNotFound = (): AppError => appError(ErrorCode.NOT_FOUND, { message: 'Task not found' });

function conflict(message: string, details?: Record<string, unknown>): AppError {
  return appError(ErrorCode.CONFLICT, details ? { message, details } : { message });
}

/** TASK-1: an id of another user's task. */
export const idTaken = (): AppError => conflict('This id is already in use');

/** A user's time zone as stored, or UTC when this runtime does not know it. */
export function safeTimeZone(timeZone: string): string {
  try {
    dateFormatIn(timeZone);
    return timeZone;
  } catch {
    return 'UTC';
  }
}

/** Empty or blank optional text means "none". */
function optionalText(value: string | null | undefined): string | null {
  const trimmed = value?.trim();
  return trimmed ? trimmed : null;
}

function seriesDayOf(deadline: string | null, recurrence: Recurrence | null): number | null {
  return deadline && recurrence ? dayOfMonth(deadline) : null;
}

function sameRecurrence(a: Recurrence | null, b: Recurrence | null): boolean {
  if (!a || !b) return !a && !b;
  return a.type === b.type && a.interval === b.interval && (a.endDate ?? null) === (b.endDate ?? null);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * TASK-6: dependencies name the user's own existing tasks (`graph`: the
 * user's tasks reachable from the requested ones, each with its
 * dependencies), not the task itself, and make no
 * cycle. Returns them in lower case without duplicates, in the order given.
 */
export function checkDependencies(graph: ReadonlyMap<string, readonly string[]>, taskId: string, requested: readonly string[], path: string): string[] {
  const wanted = [...new Set(requested.map((d) => d.toLowerCase()))];
  if (wanted.length === 0) return wanted;
  const invalid = (message: string) => new AppError(ErrorCode.VALIDATION, message, { issues: [{ path, message }] });
  if (wanted.includes(taskId)) throw invalid('A task cannot depend on itself');
  const unknown = wanted.filter((d) => !graph.has(d));
  if (unknown.length > 0) throw invalid(`Unknown task(s): ${unknown.join(', ')}`);
  const edges = (id: string) => (id === taskId ? wanted : (graph.get(id) ?? []));
  const seen = new Set<string>();
  const stack = [...wanted];
  while (stack.length > 0) {
    const current = stack.pop()!;
    if (current === taskId) throw invalid('Dependencies must not form a cycle');
    if (seen.has(current)) continue;
    seen.add(current);
    stack.push(...edges(current));
  }
  return wanted;
}

/** The fields every new task starts with: version 1, the next seq, never completed, deleted or repeated yet. */
type NewTaskFields = Omit<TaskRecord, 'nextOccurrenceId' | 'statusBeforeDelete' | 'version' | 'seq' | 'createdAt' | 'updatedAt' | 'completedAt' | 'deletedAt'>;

function newTask(fields: NewTaskFields, ctx: ChangeContext): TaskRecord {
  return {
    ...fields,
    nextOccurrenceId: null,
    statusBeforeDelete: null,
    version: 1,
    seq: ctx.nextSeq(),
    createdAt: ctx.now,
    updatedAt: ctx.now,
    completedAt: null,
    deletedAt: null,
  };
}

/** A task's reminder fields for `remindAt`: a new reminder id whenever it is set (REM). */
function reminderFields(remindAt: Date | null): Pick<TaskRecord, 'remindAt' | 'reminderId'> {
  return { remindAt, reminderId: remindAt ? randomUUID() : null };
}

const noReminder = { remindAt: null, reminderId: null } as const;

/** A new task from `task:create` (its dependencies already checked). */
export function createTask(userId: string, id: string, input: TaskCreate, dependencies: string[], ctx: ChangeContext): TaskRecord {
  const title = input.title.trim();
  const deadline = input.deadline ?? null;
  const recurrence = input.recurrence ? wireRecurrence(input.recurrence) : null;
  return newTask({
    ...reminderFields(input.remindAt ? new Date(input.remindAt) : null),
    id,
    userId,
    title,
    description: input.description ?? '',
    deadline,
    intensity: input.intensity ?? guessIntensity(title),
    status: input.status ?? 'not_started',
    project: optionalText(input.project),
    waitingOn: input.waitingOn !== undefined ? optionalText(input.waitingOn) : waitingOnFromTitle(title),
    dependencies,
    recurrence,
    seriesDay: seriesDayOf(deadline, recurrence),
  }, ctx);
}

/**
 * TASK-2: a request that names the version it was made from is refused when
 * the task has changed since, with the task as it is (`task:update`, and in
 * 1.1 `task:complete`, `task:delete`, `task:restore`, `task:purge`: CHAT-15).
 * It is checked before anything else, so a repeated request is refused too.
 */
export function assertVersion(task: TaskRecord, expectedVersion: number | undefined): void {
  if (expectedVersion !== undefined && expectedVersion !== task.version) {
    throw conflict('The task has changed since you last saw it', { task: toWireTask(task) });
  }
}

/** Bumps version and seq of a changed record (TASK-2, SYNC-1). */
function changed(task: TaskRecord, fields: Partial<TaskRecord>, ctx: ChangeContext): TaskRecord {
  return { ...task, ...fields, version: task.version + 1, seq: ctx.nextSeq(), updatedAt: ctx.now };
}

/**
 * `task:update`: applies a patch (its dependencies already checked, when it
 * has any). A patch that changes nothing is no change: `null`.
 */
export function patchTask(task: TaskRecord, patch: TaskPatch, expectedVersion: number | undefined, dependencies: string[] | undefined, ctx: ChangeContext): TaskRecord | null {
  assertVersion(task, expectedVersion);
  if (task.status === 'deleted') throw conflict('The task is in the trash; restore it first');
  const fields: Partial<TaskRecord> = {};
  if (patch.title !== undefined && patch.title.trim() !== task.title) fields.title = patch.title.trim();
  if (patch.description !== undefined && patch.description !== task.description) fields.description = patch.description;
  if (patch.deadline !== undefined && patch.deadline !== task.deadline) fields.deadline = patch.deadline;
  if (patch.recurrence !== undefined && !sameRecurrence(task.recurrence, patch.recurrence)) {
    fields.recurrence = patch.recurrence ? wireRecurrence(patch.recurrence) : null;
  }
  if ('deadline' in fields || 'recurrence' in fields) {
    fields.seriesDay = seriesDayOf(fields.deadline !== undefined ? fields.deadline : task.deadline, fields.recurrence !== undefined ? fields.recurrence : task.recurrence);
  }
  if (patch.intensity !== undefined && patch.intensity !== task.intensity) fields.intensity = patch.intensity;
  if (patch.status !== undefined && patch.status !== task.status) {
    fields.status = patch.status;
    if (task.status === 'completed') fields.completedAt = null;
  }
  if (patch.project !== undefined && optionalText(patch.project) !== task.project) fields.project = optionalText(patch.project);
  if (patch.waitingOn !== undefined && optionalText(patch.waitingOn) !== task.waitingOn) fields.waitingOn = optionalText(patch.waitingOn);
  if (dependencies !== undefined && !sameList(dependencies, task.dependencies)) fields.dependencies = dependencies;
  if (patch.remindAt !== undefined) {
    const remindAt = patch.remindAt === null ? null : new Date(patch.remindAt);
    if (remindAt?.getTime() !== task.remindAt?.getTime()) Object.assign(fields, reminderFields(remindAt));
  }
  return Object.keys(fields).length === 0 ? null : changed(task, fields, ctx);
}

/**
 * `task:complete` (TASK-3): `openDependencies` are the task's dependencies not
 * yet completed. A recurring task with a deadline gets exactly one next
 * occurrence: none when the occurrence an earlier completion made still
 * exists (`nextOccurrenceExists`, default: whenever it made one), so a task
 * reopened and completed again makes no second one, while one whose
 * occurrence was purged (an undo, CHAT-15) makes it again. Completing a
 * completed task changes nothing: `null`.
 */
export function completeTask(
  task: TaskRecord,
  notes: string | undefined,
  openDependencies: readonly string[],
  ctx: ChangeContext,
  options: { expectedVersion?: number | undefined; nextOccurrenceExists?: boolean | undefined } = {},
): { task: TaskRecord; next: TaskRecord | null } | null {
  assertVersion(task, options.expectedVersion);
  if (task.status === 'completed') return null;
  if (task.status === 'deleted') throw conflict('The task is in the trash; restore it first');
  if (openDependencies.length > 0) {
    const blockedBy = task.dependencies.filter((d) => openDependencies.includes(d));
    throw conflict('The task waits for dependencies that are not completed', { blockedBy });
  }
  const trimmed = notes?.trim();
  // REM-5: a completed task's reminder is cleared.
  const fields: Partial<TaskRecord> = { status: 'completed', completedAt: ctx.now, ...noReminder };
  if (trimmed) fields.description = `${task.description}\n\nCompleted: ${trimmed}`;
  const seriesDay = task.seriesDay ?? (task.deadline ? dayOfMonth(task.deadline) : null);
  const hasNext = task.nextOccurrenceId !== null && (options.nextOccurrenceExists ?? true);
  const nextDue = task.recurrence && task.deadline && !hasNext ? nextDeadline(task.deadline, task.recurrence, seriesDay!) : null;
  const nextId = nextDue ? randomUUID() : null;
  if (nextId) fields.nextOccurrenceId = nextId;
  const completed = changed(task, fields, ctx);
  if (!nextDue || !nextId) return { task: completed, next: null };
  // REM-6: the next occurrence is reminded as long before its deadline as this one was.
  const nextRemindAt = task.remindAt && task.deadline ? shiftReminder(task.remindAt, task.deadline, nextDue, ctx.timeZone) : null;
  const next = newTask({
    ...reminderFields(nextRemindAt),
    id: nextId,
    userId: task.userId,
    title: task.title,
    description: task.description,
    deadline: nextDue,
    intensity: task.intensity,
    status: 'not_started',
    project: task.project,
    waitingOn: null,
    dependencies: [],
    recurrence: task.recurrence ? wireRecurrence(task.recurrence) : null,
    seriesDay,
  }, ctx);
  return { task: completed, next };
}

/** `task:delete`: to the trash. Deleting what is already there changes nothing: `null`. */
export function trashTask(task: TaskRecord, ctx: ChangeContext, expectedVersion?: number): TaskRecord | null {
  assertVersion(task, expectedVersion);
  if (task.status === 'deleted') return null;
  // REM-5: the reminder goes with it, and restoring does not bring it back.
  return changed(task, { status: 'deleted', statusBeforeDelete: task.status, deletedAt: ctx.now, ...noReminder }, ctx);
}

/** `task:restore` (TASK-4): back with the status it had before, even `completed`. */
export function restoreTask(task: TaskRecord, ctx: ChangeContext, expectedVersion?: number): TaskRecord {
  assertVersion(task, expectedVersion);
  if (task.status !== 'deleted') throw conflict('The task is not in the trash');
  const previous: TaskStatus = task.statusBeforeDelete && task.statusBeforeDelete !== 'deleted' ? task.statusBeforeDelete : 'not_started';
  return changed(task, { status: previous, statusBeforeDelete: null, deletedAt: null }, ctx);
}

/** `task:purge` (TASK-4): only from the trash. */
export function assertPurgeable(task: TaskRecord, expectedVersion?: number): void {
  assertVersion(task, expectedVersion);
  if (task.status !== 'deleted') throw conflict('Only a task in the trash can be purged');
}

/** TASK-4: a completed or deleted task whose completion or deletion is older than `cutoff`. */
export function isExpired(task: TaskRecord, cutoff: Date): boolean {
  return (task.status === 'completed' && task.completedAt !== null && task.completedAt < cutoff) || (task.status === 'deleted' && task.deletedAt !== null && task.deletedAt < cutoff);
}

/**
 * The reminders a change writes, from its tasks before and after (REM): a task
 * whose reminder id changed gained a new reminder (which replaces the old one
 * in storage) or lost it. `gone` lists every reminder the tabs should drop
 * (`reminder:cleared`), replaced ones included. A reminder whose time has
 * passed fires at once, late (REM-7).
 */
export function reminderChanges(
  before: readonly (TaskRecord | undefined)[],
  after: readonly TaskRecord[],
  now: Date,
): { writes: ReminderWrites; gone: string[] } | undefined {
  const previous = new Map<string, TaskRecord>();
  for (const task of before) if (task) previous.set(task.id, task);
  const set: ReminderWrites['set'][number][] = [];
  const cleared: string[] = [];
  const gone: string[] = [];
  for (const task of after) {
    const old = previous.get(task.id);
    if ((old?.reminderId ?? null) === task.reminderId) continue;
    if (old?.reminderId) gone.push(old.reminderId);
    if (task.reminderId && task.remindAt) {
      set.push({ id: task.reminderId, taskId: task.id, firesAt: task.remindAt, late: task.remindAt.getTime() < now.getTime() });
    } else if (old?.reminderId) {
      cleared.push(old.reminderId);
    }
  }
  return gone.length === 0 && set.length === 0 ? undefined : { writes: { set, cleared }, gone };
}
