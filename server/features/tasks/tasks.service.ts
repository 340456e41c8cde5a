/**
 * The tasks feature (PROTOCOL §6.1): every change to a user's tasks goes through
 * here, whatever its source (socket, assistant tool, purge job).
 *
 * Each change runs in one transaction that first locks the user's row, so a
 * user's changes are serialised; it takes the next value of `users.task_seq`
 * (SYNC-1) for every task it changes, and its events are handed to `events`
 * only after the commit, in seq order (SYNC-2). Changes of different users
 * asked in the same event-loop turn share that transaction and its commit
 * (group commit, `SqlPool.transaction` with the user as group): one user's
 * failure still fails only that user's change.
 */
import { randomUUID } from 'node:crypto';
import { UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { AppError, appError, ErrorCode } from '../../errors.js';
import { limits } from '../../../shared/limits.js';
import type {
  IntensityClass,
  Recurrence,
  Task,
  TaskChanged,
  TaskComplete,
  TaskCreate,
  TaskListQuery,
  TaskRemoved,
  TaskStatus,
  TaskSyncResult,
  TaskUpdate,
} from '../../../shared/schemas/tasks.js';
import type { TaskEntity } from './task.entity.js';
import type { Sql, SqlPool, Statement } from '../../db/sql.js';
import { guessIntensity, waitingOnFromTitle } from './intensity.js';
import { calendarDateIn, dateFormatIn, pickNextTask } from './next-task.js';
import { addDays, dayOfMonth, nextDeadline } from './recurrence.js';

/**
 * Where committed changes go (the realtime layer broadcasts them to `user:<id>`).
 * Called after the commit, in seq order; implementations must not throw.
 */
export interface TaskEvents {
  changed(userId: string, data: TaskChanged): void;
  removed(userId: string, data: TaskRemoved): void;
}

export interface TasksService {
  /** TASK-1: a known id of the user returns that task with `created: false` and changes nothing. */
  create(userId: string, input: TaskCreate): Promise<{ task: Task; created: boolean }>;
  update(userId: string, input: TaskUpdate): Promise<{ task: Task }>;
  complete(userId: string, input: TaskComplete): Promise<{ task: Task; next: Task | null }>;
  /** `task:delete`: moves the task to the trash. */
  remove(userId: string, id: string): Promise<{ task: Task }>;
  restore(userId: string, id: string): Promise<{ task: Task }>;
  purge(userId: string, id: string): Promise<{ id: string }>;
  list(userId: string, query: TaskListQuery): Promise<{ tasks: Task[]; seq: number }>;
  next(userId: string, query: { intensity?: IntensityClass | undefined }): Promise<{ task: Task | null; score: number | null }>;
  sync(userId: string, since: number): Promise<TaskSyncResult>;
  /** Every task of the user, trash included, oldest first (`user:export`). */
  exportAll(userId: string): Promise<Task[]>;
  currentSeq(userId: string): Promise<number>;
  /** One of the user's tasks; another user's or an unknown id is NOT_FOUND (TASK-6). */
  findOwned(userId: string, id: string): Promise<Task>;
  /**
   * The periodic job (TASK-4): purges completed and deleted tasks whose
   * `completedAt`/`deletedAt` is older than 7 days, each as its own change with
   * a tombstone and a `removed` event, and prunes tombstones older than 30 days.
   * Returns the number of tasks purged.
   */
  purgeExpired(now?: Date): Promise<number>;
}

/** The wire shape of a task entity. */
export function toTask(t: TaskEntity): Task {
  return {
    id: t.id,
    title: t.title,
    description: t.description,
    deadline: t.deadline ?? null,
    intensity: t.intensity,
    status: t.status,
    project: t.project ?? null,
    waitingOn: t.waitingOn ?? null,
    dependencies: [...(t.dependencies ?? [])],
    recurrence: t.recurrence ? wireRecurrence(t.recurrence) : null,
    version: t.version,
    seq: t.seq,
    createdAt: t.createdAt.toISOString(),
    updatedAt: t.updatedAt.toISOString(),
    completedAt: t.completedAt ? t.completedAt.toISOString() : null,
    deletedAt: t.deletedAt ? t.deletedAt.toISOString() : null,
  };
}

function wireRecurrence(r: Recurrence): Recurrence {
  return { type: r.type, interval: r.interval, endDate: r.endDate ?? null };
}

/**
 * Changes work on plain rows with plain SQL (`server/db/sql.ts`), not managed
 * entities: task changes are the hottest write path, and the unit of work,
 * knex and the ORM's transaction wrapper cost more CPU than the statements
 * (measured per update: 3.2 ms with entities, 1.5 ms with plain rows through
 * the ORM, 0.5 ms as plain SQL). A change saves each altered task with one
 * UPDATE of the altered columns and inserts new ones at its end. The views read
 * plain rows too, each view in one round trip on one snapshot.
 */
const taskColumns = {
  title: 'title',
  description: 'description',
  deadline: 'deadline',
  intensity: 'intensity',
  status: 'status',
  project: 'project',
  waitingOn: 'waiting_on',
  dependencies: 'dependencies',
  recurrence: 'recurrence',
  seriesDay: 'series_day',
  nextOccurrenceId: 'next_occurrence_id',
  statusBeforeDelete: 'status_before_delete',
  version: 'version',
  seq: 'seq',
  updatedAt: 'updated_at',
  completedAt: 'completed_at',
  deletedAt: 'deleted_at',
} as const satisfies Partial<Record<keyof TaskEntity, string>>;
type TaskColumn = keyof typeof taskColumns;
const taskColumnKeys = Object.keys(taskColumns) as TaskColumn[];

interface TaskRow {
  id: string;
  user_id: string;
  title: string;
  description: string;
  deadline: string | null;
  intensity: number;
  status: TaskStatus;
  project: string | null;
  waiting_on: string | null;
  dependencies: string[] | null;
  recurrence: Recurrence | null;
  series_day: number | null;
  next_occurrence_id: string | null;
  status_before_delete: TaskStatus | null;
  version: number;
  seq: number;
  created_at: string | Date;
  updated_at: string | Date;
  completed_at: string | Date | null;
  deleted_at: string | Date | null;
}

const toDate = (v: string | Date) => (v instanceof Date ? v : new Date(v));

/** Rows read by a view (`listStatement`, the other reads of `taskRowColumns`), as wire tasks, in their order. */
export const wireTasks = (rows: unknown[] | undefined): Task[] => (rows as TaskRow[]).map((row) => toTask(rowToTask(row)));

function rowToTask(row: TaskRow): TaskEntity {
  return {
    id: row.id,
    user: { id: row.user_id },
    title: row.title,
    description: row.description,
    deadline: row.deadline,
    intensity: row.intensity,
    status: row.status,
    project: row.project,
    waitingOn: row.waiting_on,
    dependencies: row.dependencies ?? [],
    recurrence: row.recurrence,
    seriesDay: row.series_day,
    nextOccurrenceId: row.next_occurrence_id,
    statusBeforeDelete: row.status_before_delete,
    version: row.version,
    seq: row.seq,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
    completedAt: row.completed_at === null ? null : toDate(row.completed_at),
    deletedAt: row.deleted_at === null ? null : toDate(row.deleted_at),
  } as unknown as TaskEntity;
}

type Snapshot = Record<TaskColumn, unknown>;

/** The column values as loaded (arrays copied), to find what a change altered. */
function snapshotOf(task: TaskEntity): Snapshot {
  const snap = {} as Snapshot;
  for (const key of taskColumnKeys) {
    const value = task[key];
    snap[key] = Array.isArray(value) ? [...(value as unknown[])] : value;
  }
  return snap;
}

/** Whether a column still holds its loaded value (compared without serialising: this runs for every column of every change). */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b || ((a === null || a === undefined) && (b === null || b === undefined))) return true;
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => x === b[i]);
  if (typeof a === 'object' && typeof b === 'object' && a !== null && b !== null) return JSON.stringify(a) === JSON.stringify(b);
  return false;
}

/** One column's value as a query parameter. */
function columnValue(task: TaskEntity, key: TaskColumn): unknown {
  const value = task[key];
  return key === 'recurrence' && value !== null && value !== undefined ? JSON.stringify(value) : (value ?? null);
}

/** Every column of a task row, named (prepared statements must not use `*`). */
const taskRowColumns = ['id', 'user_id', 'created_at', ...taskColumnKeys.map((key) => taskColumns[key])].map((c) => `"${c}"`).join(', ');
const insertTaskSql = `insert into tasks (${taskRowColumns})
  values (${[...Array(taskColumnKeys.length + 3).keys()].map((i) => `$${i + 1}`).join(', ')})`;

/** What a change loaded (with snapshots), created and purged; saved at its end. */
interface Loaded {
  tasks: Map<TaskEntity, Snapshot>;
  created: TaskEntity[];
  purged: Set<string>;
}

/** The statements that save a change: inserts of new tasks, then one UPDATE of the altered columns per altered task. */
function saveStatements(loaded: Loaded): Statement[] {
  const statements: Statement[] = [];
  for (const task of loaded.created) {
    if (loaded.purged.has(task.id)) continue;
    statements.push({ text: insertTaskSql, params: [task.id, task.user.id, task.createdAt, ...taskColumnKeys.map((key) => columnValue(task, key))] });
  }
  for (const [task, snap] of loaded.tasks) {
    if (loaded.purged.has(task.id)) continue;
    const changed = taskColumnKeys.filter((key) => !sameValue(task[key], snap[key]));
    if (changed.length === 0) continue;
    statements.push({
      text: `update tasks set ${changed.map((key, i) => `"${taskColumns[key]}" = $${i + 1}`).join(', ')} where id = $${changed.length + 1}`,
      params: [...changed.map((key) => columnValue(task, key)), task.id],
    });
  }
  return statements;
}

/** The statement that reads one of the user's tasks; `id` must be a uuid. */
function selectOwnedStatement(userId: string, id: string): Statement {
  return { text: `select ${taskRowColumns} from tasks where id = $1 and user_id = $2`, params: [id.toLowerCase(), userId] };
}

/** One of the user's tasks as a plain row; another user's or an unknown id is NOT_FOUND (TASK-6). */
async function selectOwned(sql: Sql, userId: string, id: string): Promise<TaskEntity> {
  if (!uuidPattern.test(id)) throw notFound();
  const { text, params } = selectOwnedStatement(userId, id);
  const rows = await sql.query<TaskRow>(text, params);
  if (!rows[0]) throw notFound();
  return rowToTask(rows[0]);
}

function notFound(): AppError {
  return appError(ErrorCode.NOT_FOUND, { message: 'Task not found' });
}

/** A new task as the plain row a change inserts. */
function newTask(userId: string, fields: Omit<TaskEntity, 'user' | 'version' | 'nextOccurrenceId' | 'statusBeforeDelete' | 'completedAt' | 'deletedAt' | 'updatedAt'>): TaskEntity {
  return {
    ...fields,
    user: { id: userId },
    nextOccurrenceId: null,
    statusBeforeDelete: null,
    version: 1,
    updatedAt: fields.createdAt,
    completedAt: null,
    deletedAt: null,
  } as unknown as TaskEntity;
}

const DAY_MS = 86_400_000;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** purge-job batch size: tasks of one user purged in one transaction */
const PURGE_BATCH = 200;

interface LockedUser {
  id: string;
  timezone: string;
}

interface ChangeContext {
  sql: Sql;
  user: LockedUser;
  now: Date;
  /** Takes the user's next change sequence number (SYNC-1). */
  nextSeq(): Promise<number>;
  /** Loads one of the user's tasks; saved at the end of the change if altered. */
  load(id: string): Promise<TaskEntity>;
  /** Adds a new task, inserted at the end of the change. */
  add(task: TaskEntity): void;
  /**
   * Queues `task:changed` for after the commit; call once the task holds its
   * final values. Returns the wire task, which the ack then carries too.
   */
  changed(task: TaskEntity): Task;
  removed(seq: number, id: string): void;
  /** Marks a task deleted from the table in this change (not saved at its end). */
  purged(id: string): void;
}

/** Thrown out of a change that changed nothing, to roll back its seq bump. */
class NoChange {
  constructor(readonly result: unknown) {}
}

type PendingEvent = { kind: 'changed'; data: TaskChanged } | { kind: 'removed'; data: TaskRemoved };

/** Empty or blank optional text means "none". */
function optionalText(value: string | null | undefined): string | null {
  const trimmed = value?.trim();
  return trimmed ? trimmed : null;
}

function safeTimeZone(timeZone: string): string {
  try {
    dateFormatIn(timeZone);
    return timeZone;
  } catch {
    return 'UTC';
  }
}

function sameRecurrence(a: Recurrence | null | undefined, b: Recurrence | null): boolean {
  if (!a || !b) return !a && !b;
  return a.type === b.type && a.interval === b.interval && (a.endDate ?? null) === (b.endDate ?? null);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function seriesDayOf(deadline: string | null | undefined, recurrence: Recurrence | null | undefined): number | null {
  return deadline && recurrence ? dayOfMonth(deadline) : null;
}

interface ViewUser {
  taskSeq: number;
  tombstoneFloorSeq: number;
  timezone: string;
}

/** Each list view's filter and order (`upcoming` is cut at the user's "today + days" after reading). */
const listViews: Record<NonNullable<TaskListQuery['view']>, { where: string; orderBy: string }> = {
  active: { where: "status not in ('completed', 'deleted')", orderBy: 'deadline asc nulls last, created_at asc, id asc' },
  upcoming: { where: "status not in ('completed', 'deleted') and deadline is not null", orderBy: 'deadline asc, created_at asc, id asc' },
  waiting: { where: "status = 'waiting_on'", orderBy: 'updated_at asc, id asc' },
  completed: { where: "status = 'completed'", orderBy: 'completed_at desc, id asc' },
  deleted: { where: "status = 'deleted'", orderBy: 'deleted_at desc, id asc' },
};

/**
 * The read of one list view (`tasks:list`), optionally of one project. The
 * assistant reads the `active` view with a send's transaction for its prompt.
 * The `upcoming` view's day limit depends on the user's time zone and is applied
 * to the rows afterwards.
 */
export function listStatement(userId: string, view: NonNullable<TaskListQuery['view']>, project?: string): Statement {
  const { where, orderBy } = listViews[view];
  const params: unknown[] = [userId];
  let filter = `user_id = $1 and ${where}`;
  if (project !== undefined) {
    params.push(project);
    filter += ` and project = $${params.length}`;
  }
  return { text: `select ${taskRowColumns} from tasks where ${filter} order by ${orderBy}`, params };
}

export function createTasksService(deps: {
  /** plain SQL on the ORM's pool */
  sql: SqlPool;
  events: TaskEvents;
  /** the clock for "today" in views and `next` (tests pin it) */
  now?: () => Date;
}): TasksService {
  const { sql, events } = deps;
  const clock = deps.now ?? (() => new Date());

  /**
   * Runs one change. The user's row is locked by taking the next seq up front
   * (one statement: lock, bump and read the time zone); a change that turns out
   * to change nothing is rolled back, so seq rises only with real changes.
   * `preload`, the id of the task the change is about, is read in the same
   * round trip as the BEGIN and the bump (after the lock); what the change
   * altered is written in the round trip of the COMMIT. Events are emitted
   * after the commit.
   */
  async function change<R>(userId: string, preload: string | undefined, work: (ctx: ChangeContext) => Promise<R>): Promise<R> {
    if (preload !== undefined && !uuidPattern.test(preload)) throw notFound();
    const bumpStatement: Statement = { text: 'update users set task_seq = task_seq + 1 where id = $1 returning task_seq, timezone', params: [userId] };
    const first = preload === undefined ? [bumpStatement] : [bumpStatement, selectOwnedStatement(userId, preload)];
    let result: R;
    let pending: PendingEvent[];
    try {
      // Grouped with other users' changes of this loop turn (one commit for all; SqlPool.transaction):
      // `work` may then run twice, so everything it collects lives inside it.
      ({ result, pending } = await sql.transaction(async (tx, [bumped, preloaded]) => {
        const pending: PendingEvent[] = [];
        const loaded: Loaded = { tasks: new Map(), created: [], purged: new Set() };
        const bump = () => tx.query<{ task_seq: number; timezone: string }>(bumpStatement.text, bumpStatement.params);
        const row = (bumped as { task_seq: number; timezone: string }[])[0];
        if (!row) throw appError(ErrorCode.NOT_FOUND, { message: 'User not found' });
        let preloadedRow = preload === undefined ? undefined : ((preloaded as TaskRow[])[0] ?? null);
        let reserved: number | undefined = Number(row.task_seq);
        const done = await work({
          sql: tx,
          user: { id: userId, timezone: safeTimeZone(row.timezone) },
          now: new Date(),
          async nextSeq() {
            if (reserved !== undefined) {
              const seq = reserved;
              reserved = undefined;
              return seq;
            }
            return Number((await bump())[0]!.task_seq);
          },
          async load(id) {
            let task: TaskEntity;
            if (preloadedRow !== undefined && id.toLowerCase() === preload?.toLowerCase()) {
              if (preloadedRow === null) throw notFound();
              task = rowToTask(preloadedRow);
              preloadedRow = undefined;
            } else {
              task = await selectOwned(tx, userId, id);
            }
            loaded.tasks.set(task, snapshotOf(task));
            return task;
          },
          add(task) {
            loaded.created.push(task);
          },
          purged(id: string) {
            loaded.purged.add(id);
          },
          changed(task) {
            const wire = toTask(task);
            pending.push({ kind: 'changed', data: { seq: task.seq, task: wire } });
            return wire;
          },
          removed(seq, id) {
            pending.push({ kind: 'removed', data: { seq, id } });
          },
        });
        if (reserved !== undefined) throw new NoChange(done);
        tx.atCommit(saveStatements(loaded));
        return { result: done, pending };
      }, first, { group: userId }));
    } catch (err) {
      if (err instanceof NoChange) return err.result as R;
      throw err;
    }
    pending.sort((a, b) => a.data.seq - b.data.seq);
    for (const event of pending) {
      if (event.kind === 'changed') events.changed(userId, event.data);
      else events.removed(userId, event.data);
    }
    return result;
  }

  /**
   * Runs reads on one snapshot in one round trip, so that `seq` matches the
   * tasks read: the user's row first, then `statements` (each may use `$1`,
   * the user's id).
   */
  async function snapshot(userId: string, statements: readonly Statement[]): Promise<{ user: ViewUser; rows: unknown[][] }> {
    const [users, ...rows] = await sql.snapshot([{ text: 'select task_seq, tombstone_floor_seq, timezone from users where id = $1', params: [userId] }, ...statements]);
    const row = (users as { task_seq: number; tombstone_floor_seq: number; timezone: string }[])[0];
    if (!row) throw appError(ErrorCode.NOT_FOUND, { message: 'User not found' });
    return { user: { taskSeq: Number(row.task_seq), tombstoneFloorSeq: Number(row.tombstone_floor_seq), timezone: safeTimeZone(row.timezone) }, rows };
  }

  /**
   * TASK-6: dependencies name the user's own existing tasks, not the task itself,
   * and make no cycle. Returns them without duplicates, in the order given.
   */
  async function checkDependencies(sql: Sql, userId: string, taskId: string, requested: readonly string[], path: string): Promise<string[]> {
    const wanted = [...new Set(requested.map((d) => d.toLowerCase()))];
    if (wanted.length === 0) return wanted;
    const invalid = (message: string) =>
      new AppError(ErrorCode.VALIDATION, message, { issues: [{ path, message }] });
    if (wanted.includes(taskId)) throw invalid('A task cannot depend on itself');
    const rows = await sql.query<{ id: string; dependencies: string[] | null }>('select id, dependencies from tasks where user_id = $1', [userId]);
    const graph = new Map(rows.map((r) => [r.id, r.dependencies ?? []]));
    const unknown = wanted.filter((d) => !graph.has(d));
    if (unknown.length > 0) throw invalid(`Unknown task(s): ${unknown.join(', ')}`);
    graph.set(taskId, wanted);
    const seen = new Set<string>();
    const stack = [...wanted];
    while (stack.length > 0) {
      const current = stack.pop()!;
      if (current === taskId) throw invalid('Dependencies must not form a cycle');
      if (seen.has(current)) continue;
      seen.add(current);
      stack.push(...(graph.get(current) ?? []));
    }
    return wanted;
  }

  function conflict(message: string, details?: Record<string, unknown>): AppError {
    return appError(ErrorCode.CONFLICT, details ? { message, details } : { message });
  }

  async function purgeOne(ctx: ChangeContext, task: TaskEntity): Promise<void> {
    const seq = await ctx.nextSeq();
    await ctx.sql.query('insert into task_tombstones (id, user_id, task_id, seq, purged_at) values ($1, $2, $3, $4, $5)', [
      randomUUID(),
      ctx.user.id,
      task.id,
      seq,
      ctx.now,
    ]);
    await ctx.sql.query('delete from tasks where id = $1', [task.id]);
    ctx.purged(task.id);
    ctx.removed(seq, task.id);
  }

  const service: TasksService = {
    async create(userId, input) {
      try {
        return await change(userId, undefined, async (ctx) => {
          const { now } = ctx;
          if (input.id) {
            const [existing] = await ctx.sql.query<TaskRow>(`select ${taskRowColumns} from tasks where id = $1`, [input.id.toLowerCase()]);
            if (existing) {
              if (existing.user_id !== userId) throw conflict('This id is already in use');
              return { task: toTask(rowToTask(existing)), created: false };
            }
          }
          // PostgreSQL prints uuids in lower case; so do we, whatever case the client sent.
          const id = (input.id ?? randomUUID()).toLowerCase();
          const title = input.title.trim();
          const deadline = input.deadline ?? null;
          const recurrence = input.recurrence ? wireRecurrence(input.recurrence) : null;
          const dependencies = await checkDependencies(ctx.sql, userId, id, input.dependencies ?? [], 'dependencies');
          const seq = await ctx.nextSeq();
          const task = newTask(userId, {
            id,
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
            seq,
            createdAt: now,
          });
          ctx.add(task);
          return { task: ctx.changed(task), created: true };
        });
      } catch (err) {
        // Two users racing for one new id: the loser's insert hits the primary key.
        if (err instanceof UniqueConstraintViolationException) throw conflict('This id is already in use');
        throw err;
      }
    },

    async update(userId, input) {
      return change(userId, input.id, async (ctx) => {
        const { now } = ctx;
        const task = await ctx.load(input.id);
        if (input.expectedVersion !== undefined && input.expectedVersion !== task.version) {
          throw conflict('The task has changed since you last saw it', { task: toTask(task) });
        }
        if (task.status === 'deleted') throw conflict('The task is in the trash; restore it first');
        const patch = input.patch;
        let dirty = false;
        if (patch.title !== undefined && patch.title.trim() !== task.title) {
          task.title = patch.title.trim();
          dirty = true;
        }
        if (patch.description !== undefined && patch.description !== task.description) {
          task.description = patch.description;
          dirty = true;
        }
        let scheduleChanged = false;
        if (patch.deadline !== undefined && patch.deadline !== (task.deadline ?? null)) {
          task.deadline = patch.deadline;
          dirty = scheduleChanged = true;
        }
        if (patch.recurrence !== undefined && !sameRecurrence(task.recurrence, patch.recurrence)) {
          task.recurrence = patch.recurrence ? wireRecurrence(patch.recurrence) : null;
          dirty = scheduleChanged = true;
        }
        if (scheduleChanged) task.seriesDay = seriesDayOf(task.deadline, task.recurrence);
        if (patch.intensity !== undefined && patch.intensity !== task.intensity) {
          task.intensity = patch.intensity;
          dirty = true;
        }
        if (patch.status !== undefined && patch.status !== task.status) {
          if (task.status === 'completed') task.completedAt = null;
          task.status = patch.status;
          dirty = true;
        }
        if (patch.project !== undefined && optionalText(patch.project) !== (task.project ?? null)) {
          task.project = optionalText(patch.project);
          dirty = true;
        }
        if (patch.waitingOn !== undefined && optionalText(patch.waitingOn) !== (task.waitingOn ?? null)) {
          task.waitingOn = optionalText(patch.waitingOn);
          dirty = true;
        }
        if (patch.dependencies !== undefined) {
          const dependencies = await checkDependencies(ctx.sql, userId, task.id, patch.dependencies, 'patch.dependencies');
          if (!sameList(dependencies, task.dependencies ?? [])) {
            task.dependencies = dependencies;
            dirty = true;
          }
        }
        // A patch that changes nothing is no change: no version, no seq, no event.
        if (!dirty) return { task: toTask(task) };
        task.version += 1;
        task.seq = await ctx.nextSeq();
        task.updatedAt = now;
        return { task: ctx.changed(task) };
      });
    },

    async complete(userId, input) {
      return change(userId, input.id, async (ctx) => {
        const { now } = ctx;
        const task = await ctx.load(input.id);
        if (task.status === 'completed') return { task: toTask(task), next: null };
        if (task.status === 'deleted') throw conflict('The task is in the trash; restore it first');
        const dependencyIds = task.dependencies ?? [];
        if (dependencyIds.length > 0) {
          const open = await ctx.sql.query<{ id: string }>(
            "select id from tasks where user_id = $1 and id = any($2::uuid[]) and status <> 'completed'",
            [userId, dependencyIds],
          );
          if (open.length > 0) {
            const blockedBy = dependencyIds.filter((d) => open.some((t) => t.id === d));
            throw conflict('The task waits for dependencies that are not completed', { blockedBy });
          }
        }
        const description = task.description;
        const notes = input.notes?.trim();
        if (notes) task.description = `${description}\n\nCompleted: ${notes}`;
        task.status = 'completed';
        task.completedAt = now;
        task.version += 1;
        task.updatedAt = now;
        task.seq = await ctx.nextSeq();

        let next: TaskEntity | null = null;
        const nextDue =
          task.recurrence && task.deadline && !task.nextOccurrenceId
            ? nextDeadline(task.deadline, task.recurrence, task.seriesDay ?? dayOfMonth(task.deadline))
            : null;
        if (nextDue && task.recurrence && task.deadline) {
          next = newTask(userId, {
            id: randomUUID(),
            title: task.title,
            description,
            deadline: nextDue,
            intensity: task.intensity,
            status: 'not_started',
            project: task.project ?? null,
            waitingOn: null,
            dependencies: [],
            recurrence: wireRecurrence(task.recurrence),
            seriesDay: task.seriesDay ?? dayOfMonth(task.deadline),
            seq: 0,
            createdAt: now,
          });
          ctx.add(next);
          task.nextOccurrenceId = next.id;
        }
        const wire = ctx.changed(task);
        if (!next) return { task: wire, next: null };
        next.seq = await ctx.nextSeq();
        return { task: wire, next: ctx.changed(next) };
      });
    },

    async remove(userId, id) {
      return change(userId, id, async (ctx) => {
        const task = await ctx.load(id);
        // Deleting what is already in the trash is a safe retry: nothing changes.
        if (task.status === 'deleted') return { task: toTask(task) };
        task.statusBeforeDelete = task.status;
        task.status = 'deleted';
        task.deletedAt = ctx.now;
        task.version += 1;
        task.updatedAt = ctx.now;
        task.seq = await ctx.nextSeq();
        return { task: ctx.changed(task) };
      });
    },

    async restore(userId, id) {
      return change(userId, id, async (ctx) => {
        const task = await ctx.load(id);
        if (task.status !== 'deleted') throw conflict('The task is not in the trash');
        const previous: TaskStatus = task.statusBeforeDelete && task.statusBeforeDelete !== 'deleted' ? task.statusBeforeDelete : 'not_started';
        task.status = previous;
        task.statusBeforeDelete = null;
        task.deletedAt = null;
        task.version += 1;
        task.updatedAt = ctx.now;
        task.seq = await ctx.nextSeq();
        return { task: ctx.changed(task) };
      });
    },

    async purge(userId, id) {
      return change(userId, id, async (ctx) => {
        const task = await ctx.load(id);
        if (task.status !== 'deleted') throw conflict('Only a task in the trash can be purged');
        await purgeOne(ctx, task);
        return { id: task.id };
      });
    },

    async list(userId, query) {
      const view = query.view ?? 'active';
      const { user, rows } = await snapshot(userId, [listStatement(userId, view, query.project)]);
      let tasks = (rows[0] as TaskRow[]).map(rowToTask);
      if (view === 'upcoming') {
        const until = addDays(calendarDateIn(user.timezone, clock()), query.days ?? 7);
        tasks = tasks.filter((t) => (t.deadline as string) <= until);
      }
      return { tasks: tasks.map(toTask), seq: user.taskSeq };
    },

    async next(userId, query) {
      const { user, rows } = await snapshot(userId, [{ text: `select ${taskRowColumns} from tasks where user_id = $1`, params: [userId] }]);
      const tasks = wireTasks(rows[0]);
      const pick = pickNextTask(tasks, { now: clock(), timeZone: user.timezone, intensity: query.intensity });
      return pick ? { task: pick.task, score: pick.score } : { task: null, score: null };
    },

    async sync(userId, since) {
      // Past the tombstone floor or ahead of the user's seq, the answer is every task (`reset`): decided in SQL too,
      // so that both reads go out in the snapshot's one round trip.
      const { user, rows } = await snapshot(userId, [
        {
          text: `select ${taskRowColumns} from tasks where user_id = $1 and seq > (
                   select case when $2::bigint < tombstone_floor_seq or $2::bigint > task_seq then -1 else $2::bigint end from users where id = $1)
                 order by seq`,
          params: [userId, since],
        },
        { text: 'select task_id from task_tombstones where user_id = $1 and seq > $2::bigint order by seq', params: [userId, since] },
      ]);
      const tasks = wireTasks(rows[0]);
      if (since < user.tombstoneFloorSeq || since > user.taskSeq) return { seq: user.taskSeq, tasks, removed: [], reset: true };
      // An id purged and later created again is alive: the task wins.
      const alive = new Set(tasks.map((t) => t.id));
      const removed = [...new Set((rows[1] as { task_id: string }[]).map((t) => t.task_id))].filter((id) => !alive.has(id));
      return { seq: user.taskSeq, tasks, removed };
    },

    async exportAll(userId) {
      const { rows } = await snapshot(userId, [{ text: `select ${taskRowColumns} from tasks where user_id = $1 order by created_at, id`, params: [userId] }]);
      return wireTasks(rows[0]);
    },

    async currentSeq(userId) {
      const rows = await sql.query<{ task_seq: number }>('select task_seq from users where id = $1', [userId]);
      const row = rows[0];
      if (!row) throw appError(ErrorCode.NOT_FOUND, { message: 'User not found' });
      return Number(row.task_seq);
    },

    async findOwned(userId, id) {
      return toTask(await selectOwned(sql, userId, id));
    },

    async purgeExpired(now = new Date()) {
      const cutoff = new Date(now.getTime() - limits.purgeAfterDays * DAY_MS);
      const expired = (task: TaskEntity) =>
        (task.status === 'completed' && task.completedAt !== null && task.completedAt !== undefined && task.completedAt < cutoff) ||
        (task.status === 'deleted' && task.deletedAt !== null && task.deletedAt !== undefined && task.deletedAt < cutoff);
      const candidates = await sql.query<{ id: string; user_id: string }>(
        `select id, user_id from tasks
          where (status = 'completed' and completed_at < $1) or (status = 'deleted' and deleted_at < $1)
          order by user_id, seq`,
        [cutoff],
      );
      const byUser = new Map<string, string[]>();
      for (const row of candidates) {
        const ids = byUser.get(row.user_id) ?? [];
        ids.push(row.id);
        byUser.set(row.user_id, ids);
      }
      let purged = 0;
      const failures: unknown[] = [];
      for (const [userId, ids] of byUser) {
        for (let i = 0; i < ids.length; i += PURGE_BATCH) {
          const batch = ids.slice(i, i + PURGE_BATCH);
          try {
            purged += await change(userId, undefined, async (ctx) => {
              // Re-read under the user's lock: a task restored or reopened meanwhile stays.
              const rows = await ctx.sql.query<TaskRow>(`select ${taskRowColumns} from tasks where user_id = $1 and id = any($2::uuid[]) order by seq`, [userId, batch]);
              let count = 0;
              for (const task of rows.map(rowToTask).filter(expired)) {
                await purgeOne(ctx, task);
                count += 1;
              }
              return count;
            });
          } catch (err) {
            failures.push(err);
          }
        }
      }
      const tombstoneCutoff = new Date(now.getTime() - limits.tombstoneRetentionDays * DAY_MS);
      // One statement: the pruned tombstones and the raised floor become visible together.
      await sql.query(
        `with pruned as (delete from task_tombstones where purged_at < $1 returning user_id, seq)
         update users u set tombstone_floor_seq = greatest(u.tombstone_floor_seq, f.max_seq)
           from (select user_id, max(seq) as max_seq from pruned group by user_id) f
          where u.id = f.user_id`,
        [tombstoneCutoff],
      );
      if (failures.length > 0) throw new AggregateError(failures, `Purging failed for ${failures.length} batch(es)`);
      return purged;
    },
  };
  return service;
}
