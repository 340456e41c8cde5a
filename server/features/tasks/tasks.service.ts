/**
 * The tasks feature (PROTOCOL §6.1): every change to a user's tasks goes through
 * here, whatever its source (socket, assistant tool, purge job). A change reads
 * what its rule needs (`tasks.repository.ts`), lets the rule decide
 * (`tasks.rules.ts`), writes the outcome, and only then hands its events to
 * `events`, in seq order (SYNC-2).
 *
 * A user's changes on this node run one after another; a change that lost a
 * race with one on another node (its write finds the user's seq moved on)
 * reads again and decides again.
 */
import { randomUUID } from 'node:crypto';
import { appError, ErrorCode } from '../../errors.js';
import { limits } from '../../../shared/limits.js';
import type {
  IntensityClass,
  Task,
  TaskChanged,
  TaskComplete,
  TaskCreate,
  TaskListQuery,
  TaskRemoved,
  TaskSyncResult,
  TaskUpdate,
} from '../../../shared/schemas/tasks.js';
import { isUniqueViolation, type ISql } from '../../db/postgres.js';
import type { ChangeNeeds, ChangeState, TaskOwner, TaskRecord, TasksRepository, TaskWrites } from './tasks.repository.js';
import {
  assertPurgeable,
  checkDependencies,
  completeTask,
  createTask,
  idTaken,
  isExpired,
  patchTask,
  reminderChanges,
  restoreTask,
  safeTimeZone,
  taskNotFound,
  toWireTask,
  trashTask,
  type ChangeContext,
} from './tasks.rules.js';
import { calendarDateIn, pickNextTask } from './next-task.js';
import { ChangeCache } from './change-cache.js';
import { addDays } from './recurrence.js';

/**
 * Where committed changes go (the realtime layer broadcasts them to `user:<id>`).
 * Called after the commit, in seq order; implementations must not throw.
 */
export interface TaskEvents {
  changed(userId: string, data: TaskChanged): void;
  removed(userId: string, data: TaskRemoved): void;
  /** a reminder the user's tabs should drop: its task's `remindAt` was cleared or moved, or the task completed or deleted (REM-5) */
  reminderCleared(userId: string, id: string): void;
  /** a reminder was set to fire at `firesAt` (the claim loop may want to wake early) */
  reminderScheduled(firesAt: Date): void;
}

export interface TasksService {
  /** TASK-1: a known id of the user returns that task with `created: false` and changes nothing. */
  create(userId: string, input: TaskCreate): Promise<{ task: Task; created: boolean }>;
  /*
   * The changes of one task also answer `previous`, the task as the change
   * found it (the very record the rule decided on; the same as `task` when
   * nothing changed), from which the assistant's tools work out their undo
   * (CHAT-15). With `expectedVersion`, a task at another version is CONFLICT (TASK-2).
   */
  update(userId: string, input: TaskUpdate): Promise<{ task: Task; previous: Task }>;
  complete(userId: string, input: TaskComplete): Promise<{ task: Task; next: Task | null; previous: Task }>;
  /** `task:delete`: moves the task to the trash. */
  remove(userId: string, id: string, expectedVersion?: number): Promise<{ task: Task; previous: Task }>;
  restore(userId: string, id: string, expectedVersion?: number): Promise<{ task: Task; previous: Task }>;
  purge(userId: string, id: string, expectedVersion?: number): Promise<{ id: string }>;
  list(userId: string, query: TaskListQuery): Promise<{ tasks: Task[]; seq: number }>;
  /**
   * The user's open tasks (the `active` view) without the seq: what the assistant's prompt lists. On `q` when
   * given (a send's transaction, whose round trip the read then shares).
   */
  openTasks(userId: string, q?: ISql): Promise<Task[]>;
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

/** What a rule decided: the ack's data and the rows to write (none: nothing changed). */
interface Decision<R> extends Partial<TaskWrites> {
  result: R;
}

const DAY_MS = 86_400_000;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** An id a task may have, or none given. */
const isTaskId = (id: string | undefined): boolean => id === undefined || uuidPattern.test(id);
const hasTask = (state: ChangeState): state is ChangeState & { task: TaskRecord } => state.task !== undefined;
/** Tasks of one user purged in one change by the purge job. */
const PURGE_BATCH = 200;
/** Reads and decisions of one change, at most, before it gives up on a busy user. */
const MAX_ATTEMPTS = 10;

const userNotFound = () => appError(ErrorCode.NOT_FOUND, { message: 'User not found' });

export function createTasksService(deps: {
  tasks: TasksRepository;
  events: TaskEvents;
  /** the clock for "today" in views and `next` (tests pin it) */
  now?: () => Date;
}): TasksService {
  const { tasks: repo, events } = deps;
  const clock = deps.now ?? (() => new Date());
  /** The tail of each user's queue of changes on this node. */
  const queues = new Map<string, Promise<unknown>>();
  const cache = new ChangeCache();

  /** Runs `work` after the user's earlier changes on this node have ended. */
  function inTurn<R>(userId: string, work: () => Promise<R>): Promise<R> {
    const run = (queues.get(userId) ?? Promise.resolve()).then(work);
    const tail = run.catch(() => undefined);
    queues.set(userId, tail);
    void tail.then(() => {
      if (queues.get(userId) === tail) queues.delete(userId);
    });
    return run;
  }

  /**
   * One change: `read` loads what the rule needs (the user's seq first), and
   * `decide` applies the rule, taking seq numbers as it changes records. The
   * writes apply only if no other change of the user came in between;
   * otherwise the change starts over from a fresh read.
   */
  function change<S extends { owner: TaskOwner; task?: TaskRecord | undefined; cached?: boolean }, R>(
    userId: string,
    read: () => Promise<S>,
    decide: (state: S, ctx: ChangeContext) => Decision<R>,
  ): Promise<R> {
    return inTurn(userId, async () => {
      for (let attempt = 1; ; attempt++) {
        const state = await read();
        const fromSeq = state.owner.seq;
        let seq = fromSeq;
        const now = new Date();
        let decision: Decision<R>;
        try {
          decision = decide(state, { now, timeZone: safeTimeZone(state.owner.timezone), nextSeq: () => ++seq });
        } catch (err) {
          // A refusal decided on this node's cache may rest on a change made on another node: only a fresh read
          // may refuse (a write is checked by the seq; a refusal writes nothing to check).
          if (!state.cached) throw err;
          cache.forget(userId);
          continue;
        }
        if (seq === fromSeq) {
          // The same for "nothing to change".
          if (!state.cached) return decision.result;
          cache.forget(userId);
          continue;
        }
        const inserted = decision.inserted ?? [];
        const updated = decision.updated ?? [];
        const reminders = reminderChanges([state.task], [...inserted, ...updated], now);
        const writes: TaskWrites = { inserted, updated, purged: decision.purged ?? [], reminders: reminders?.writes };
        if (await repo.save({ userId, fromSeq, toSeq: seq, writes, now })) {
          cache.applied(userId, state.owner, seq, writes);
          publish(userId, writes);
          for (const id of reminders?.gone ?? []) events.reminderCleared(userId, id);
          for (const set of reminders?.writes.set ?? []) events.reminderScheduled(set.firesAt);
          return decision.result;
        }
        cache.forget(userId);
        if (attempt === MAX_ATTEMPTS) {
          throw appError(ErrorCode.UNAVAILABLE, { message: 'Too many changes at once; try again', retryAfterMs: 100 });
        }
        // Lost a race with another node: a random pause makes the next race unlikely to repeat it.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 2 * attempt));
      }
    });
  }

  /** The events of a written change, in seq order. */
  function publish(userId: string, writes: TaskWrites): void {
    const out: ({ seq: number } & ({ task: TaskRecord } | { id: string }))[] = [...writes.inserted, ...writes.updated].map((task) => ({ seq: task.seq, task }));
    out.push(...writes.purged);
    out.sort((a, b) => a.seq - b.seq);
    for (const event of out) {
      if ('task' in event) events.changed(userId, { seq: event.seq, task: toWireTask(event.task) });
      else events.removed(userId, { seq: event.seq, id: event.id });
    }
  }

  /**
   * What a change needs, read on one snapshot; the owner and one task only
   * come from this node's cache when it has them (the change's write checks
   * them, see `ChangeCache`).
   */
  async function read(userId: string, needs: ChangeNeeds): Promise<ChangeState> {
    const { taskId, anyId, graphFrom, openDependenciesOf, nextOccurrenceOf } = needs;
    if (!isTaskId(taskId) || !isTaskId(anyId) || !isTaskId(openDependenciesOf)) throw taskNotFound();
    const lowerTaskId = taskId?.toLowerCase();
    if (anyId === undefined && graphFrom === undefined && openDependenciesOf === undefined && nextOccurrenceOf === undefined) {
      const cached = cache.get(userId, lowerTaskId);
      if (cached) return cached;
    }
    const state = await repo.readForChange(userId, {
      ...needs,
      taskId: lowerTaskId,
      anyId: anyId?.toLowerCase(),
      openDependenciesOf: openDependenciesOf?.toLowerCase(),
    });
    if (!state) throw userNotFound();
    cache.remember(userId, state.owner, state.task);
    return state;
  }

  /** As `read`, with one of the user's tasks: another user's or an unknown id is NOT_FOUND (TASK-6). */
  async function readTask(userId: string, taskId: string, needs: Omit<ChangeNeeds, 'taskId'> = {}): Promise<ChangeState & { task: TaskRecord }> {
    const state = await read(userId, { ...needs, taskId });
    if (!hasTask(state)) throw taskNotFound();
    return state;
  }

  const service: TasksService = {
    async create(userId, input) {
      // PostgreSQL prints uuids in lower case; so do we, whatever case the client sent.
      const id = (input.id ?? randomUUID()).toLowerCase();
      try {
        return await change(
          userId,
          () => read(userId, { anyId: input.id, graphFrom: input.dependencies?.length ? input.dependencies : undefined }),
          ({ anyTask: existing, graph }, ctx): Decision<{ task: Task; created: boolean }> => {
            if (existing) {
              if (existing.userId !== userId) throw idTaken();
              return { result: { task: toWireTask(existing), created: false } };
            }
            const dependencies = graph ? checkDependencies(graph, id, input.dependencies ?? [], 'dependencies') : [];
            const task = createTask(userId, id, input, dependencies, ctx);
            return { result: { task: toWireTask(task), created: true }, inserted: [task] };
          },
        );
      } catch (err) {
        // Two users racing for one new id: the loser's insert hits the primary key.
        if (isUniqueViolation(err)) throw idTaken();
        throw err;
      }
    },

    update(userId, input) {
      return change(
        userId,
        () => readTask(userId, input.id, { graphFrom: input.patch.dependencies }),
        ({ task, graph }, ctx) => {
          const dependencies = graph && input.patch.dependencies ? checkDependencies(graph, task.id, input.patch.dependencies, 'patch.dependencies') : undefined;
          const updated = patchTask(task, input.patch, input.expectedVersion, dependencies, ctx);
          const previous = toWireTask(task);
          return updated ? { result: { task: toWireTask(updated), previous }, updated: [updated] } : { result: { task: previous, previous } };
        },
      );
    },

    complete(userId, input) {
      return change(
        userId,
        () => readTask(userId, input.id, { openDependenciesOf: input.id, nextOccurrenceOf: input.id }),
        ({ task, openDependencies = [], nextOccurrenceExists }, ctx) => {
          const done = completeTask(task, input.notes, openDependencies, ctx, { expectedVersion: input.expectedVersion, nextOccurrenceExists });
          const previous = toWireTask(task);
          if (!done) return { result: { task: previous, next: null, previous } };
          return {
            result: { task: toWireTask(done.task), next: done.next ? toWireTask(done.next) : null, previous },
            updated: [done.task],
            inserted: done.next ? [done.next] : [],
          };
        },
      );
    },

    remove(userId, id, expectedVersion) {
      return change(
        userId,
        () => readTask(userId, id),
        ({ task }, ctx) => {
          const trashed = trashTask(task, ctx, expectedVersion);
          const previous = toWireTask(task);
          return trashed ? { result: { task: toWireTask(trashed), previous }, updated: [trashed] } : { result: { task: previous, previous } };
        },
      );
    },

    restore(userId, id, expectedVersion) {
      return change(
        userId,
        () => readTask(userId, id),
        ({ task }, ctx) => {
          const restored = restoreTask(task, ctx, expectedVersion);
          return { result: { task: toWireTask(restored), previous: toWireTask(task) }, updated: [restored] };
        },
      );
    },

    purge(userId, id, expectedVersion) {
      return change(
        userId,
        () => readTask(userId, id),
        ({ task }, ctx) => {
          assertPurgeable(task, expectedVersion);
          return { result: { id: task.id }, purged: [{ id: task.id, seq: ctx.nextSeq() }] };
        },
      );
    },

    async list(userId, query) {
      const view = query.view ?? 'active';
      const read = await repo.list(userId, view, query.project);
      if (!read) throw userNotFound();
      let tasks = read.tasks;
      if (view === 'upcoming') {
        const until = addDays(calendarDateIn(safeTimeZone(read.owner.timezone), clock()), query.days ?? 7);
        tasks = tasks.filter((t) => t.deadline !== null && t.deadline <= until);
      }
      return { tasks: tasks.map(toWireTask), seq: read.owner.seq };
    },

    async openTasks(userId, q) {
      return (await repo.open(userId, q)).map(toWireTask);
    },

    async next(userId, query) {
      const read = await repo.all(userId);
      if (!read) throw userNotFound();
      const pick = pickNextTask(read.tasks.map(toWireTask), { now: clock(), timeZone: safeTimeZone(read.owner.timezone), intensity: query.intensity });
      return pick ? { task: pick.task, score: pick.score } : { task: null, score: null };
    },

    async sync(userId, since) {
      const read = await repo.changesSince(userId, since);
      if (!read) throw userNotFound();
      const { owner } = read;
      const tasks = read.tasks.map(toWireTask);
      if (since < owner.tombstoneFloorSeq || since > owner.seq) return { seq: owner.seq, tasks, removed: [], reset: true };
      // An id purged and later created again is alive: the task wins.
      const alive = new Set(tasks.map((t) => t.id));
      const removed = [...new Set(read.purged)].filter((id) => !alive.has(id));
      return { seq: owner.seq, tasks, removed };
    },

    async exportAll(userId) {
      const read = await repo.all(userId);
      if (!read) throw userNotFound();
      return read.tasks.map(toWireTask);
    },

    async currentSeq(userId) {
      const owner = await repo.owner(userId);
      if (!owner) throw userNotFound();
      return owner.seq;
    },

    async findOwned(userId, id) {
      if (!uuidPattern.test(id)) throw taskNotFound();
      const task = await repo.findOwned(userId, id.toLowerCase());
      if (!task) throw taskNotFound();
      return toWireTask(task);
    },

    async purgeExpired(now = new Date()) {
      const cutoff = new Date(now.getTime() - limits.purgeAfterDays * DAY_MS);
      const byUser = new Map<string, string[]>();
      for (const row of await repo.expired(cutoff)) {
        const ids = byUser.get(row.userId) ?? [];
        ids.push(row.id);
        byUser.set(row.userId, ids);
      }
      let purged = 0;
      const failures: unknown[] = [];
      for (const [userId, ids] of byUser) {
        for (let i = 0; i < ids.length; i += PURGE_BATCH) {
          const batch = ids.slice(i, i + PURGE_BATCH);
          try {
            purged += await change(
              userId,
              async () => {
                const [owner, candidates] = await Promise.all([repo.owner(userId), repo.ownedAmong(userId, batch)]);
                // The user was deleted meanwhile: their tasks went with them.
                return { owner: owner ?? { seq: 0, tombstoneFloorSeq: 0, timezone: 'UTC' }, candidates: owner ? candidates : [] };
              },
              // Decided on a fresh read: a task restored or reopened meanwhile stays.
              ({ candidates }, ctx) => {
                const gone = candidates.filter((task) => isExpired(task, cutoff)).map((task) => ({ id: task.id, seq: ctx.nextSeq() }));
                return { result: gone.length, purged: gone };
              },
            );
          } catch (err) {
            failures.push(err);
          }
        }
      }
      await repo.pruneTombstones(new Date(now.getTime() - limits.tombstoneRetentionDays * DAY_MS));
      if (failures.length > 0) throw new AggregateError(failures, `Purging failed for ${failures.length} batch(es)`);
      return purged;
    },
  };
  return service;
}
