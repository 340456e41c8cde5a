/**
 * Every SQL statement of the tasks feature. Rows come back typed, as
 * `TaskRecord`s; the rules (`tasks.rules.ts`) decide what changes, and the
 * service composes the two.
 *
 * A change is one read and one write, with no transaction held between them
 * (optimistic concurrency on the user's change sequence, SYNC-1): the read
 * takes the user's `task_seq` with the rows the rules need, and the write
 * applies only while `task_seq` is still the one read. Every change of a
 * user's tasks moves `task_seq`, so a write that applies saw the latest state;
 * one that does not changes nothing and the service reads again.
 */
import type { Recurrence, TaskListView, TaskStatus } from '../../../shared/schemas/tasks.js';
import { postgres, snapshot, type ISql, type Sql } from '../../db/postgres.js';
import { batched } from '../../batch.js';

/** A task as stored: the wire fields and the ones only the server sees. */
export interface TaskRecord {
  id: string;
  userId: string;
  title: string;
  description: string;
  /** `YYYY-MM-DD` in the user's calendar */
  deadline: string | null;
  /** 1..5 */
  intensity: number;
  status: TaskStatus;
  project: string | null;
  waitingOn: string | null;
  dependencies: string[];
  recurrence: Recurrence | null;
  /** the day of the month a recurring series is anchored on (1..31), carried from occurrence to occurrence */
  seriesDay: number | null;
  /** the occurrence created when this one was completed */
  nextOccurrenceId: string | null;
  /** the status to bring back on restore (TASK-4) */
  statusBeforeDelete: TaskStatus | null;
  version: number;
  /** the user's change sequence at this task's last change */
  seq: number;
  createdAt: Date;
  updatedAt: Date;
  completedAt: Date | null;
  deletedAt: Date | null;
  /** when the user asked to be reminded (REM) */
  remindAt: Date | null;
  /** the task's reminder (a row of `reminders`) while it has one */
  reminderId: string | null;
}

/** The user's side of a change or a view: the change sequence and the time zone. */
export interface TaskOwner {
  seq: number;
  /** the purge records kept start after this seq (SYNC-1) */
  tombstoneFloorSeq: number;
  timezone: string;
}

/**
 * While changes keep coming, a read or a write alone at the end of its loop
 * turn waits this long for company, so that a steady stream of changes, about
 * one per turn, still shares statements and commits (bench/README.md, "Round
 * trips cost more than statements"). An idle node does not wait. A write
 * waits longer than a read: each commit it saves costs PostgreSQL and the
 * server more than the read's round trip, and a change whose read hit this
 * node's cache (the common case) waits only for its write. For the same
 * reason write batches go at most one per window under load, not one per
 * round trip, unless enough changes wait to fill a statement anyway (then
 * holding them would only add latency). The window is as long as a change
 * may wait without a person noticing: under load each batch's statement,
 * commit and round trip cost more than the latency it saves is worth
 * (bench/README.md, "Round trips cost more than statements").
 */
const readWindow = { windowMs: 5 };
const writeWindow = { windowMs: 20, spacing: { ms: 20, below: 16 } };

/** SQLSTATE of a deadlock PostgreSQL broke by failing one statement. */
const DEADLOCK_DETECTED = '40P01';

/** A change to write: the user's seq it was decided on, the seq it moves to, and its rows. */
export interface TaskChange {
  userId: string;
  fromSeq: number;
  toSeq: number;
  writes: TaskWrites;
  now: Date;
}

/**
 * What a change writes: new tasks, altered tasks (whole rows), purged tasks
 * with the seq of their purge, and the reminders that its tasks gained or lost
 * (REM: a reminder is written with its task, in the same statement).
 */
export interface TaskWrites {
  inserted: readonly TaskRecord[];
  updated: readonly TaskRecord[];
  purged: readonly { id: string; seq: number }[];
  reminders?: ReminderWrites | undefined;
}

/** A new reminder of a task (`remindAt` set or moved): pending, or late when its time has passed (REM-7). */
export interface ReminderSet {
  id: string;
  taskId: string;
  firesAt: Date;
  late: boolean;
}

export interface ReminderWrites {
  /** new reminders; each replaces its task's old one, if any */
  set: readonly ReminderSet[];
  /** reminders to delete: their task's `remindAt` was cleared, or the task completed or deleted */
  cleared: readonly string[];
}

/** Columns of `tasks`, in the order of `TaskRecord`'s fields. */
const columns = [
  'id',
  'user_id',
  'title',
  'description',
  'deadline',
  'intensity',
  'status',
  'project',
  'waiting_on',
  'dependencies',
  'recurrence',
  'series_day',
  'next_occurrence_id',
  'status_before_delete',
  'version',
  'seq',
  'created_at',
  'updated_at',
  'completed_at',
  'deleted_at',
  'remind_at',
  'reminder_id',
] as const;
/** The columns a change may alter. */
const mutableColumns = columns.filter((c) => c !== 'id' && c !== 'user_id' && c !== 'created_at');

/** A record as a row of `tasks` in JSON (for `jsonb_populate_recordset`). */
function toJsonRow(t: TaskRecord): Record<(typeof columns)[number], unknown> {
  return {
    id: t.id,
    user_id: t.userId,
    title: t.title,
    description: t.description,
    deadline: t.deadline,
    intensity: t.intensity,
    status: t.status,
    project: t.project,
    waiting_on: t.waitingOn,
    dependencies: t.dependencies,
    recurrence: t.recurrence,
    series_day: t.seriesDay,
    next_occurrence_id: t.nextOccurrenceId,
    status_before_delete: t.statusBeforeDelete,
    version: t.version,
    seq: t.seq,
    created_at: t.createdAt.toISOString(),
    updated_at: t.updatedAt.toISOString(),
    completed_at: t.completedAt?.toISOString() ?? null,
    deleted_at: t.deletedAt?.toISOString() ?? null,
    remind_at: t.remindAt?.toISOString() ?? null,
    reminder_id: t.reminderId,
  };
}

/** Each list view's filter and order (`upcoming` is cut at the user's "today + days" by the service). */
const listViews: Record<TaskListView, { where: string; orderBy: string }> = {
  active: { where: "status not in ('completed', 'deleted')", orderBy: 'deadline asc nulls last, created_at asc, id asc' },
  upcoming: { where: "status not in ('completed', 'deleted') and deadline is not null", orderBy: 'deadline asc, created_at asc, id asc' },
  waiting: { where: "status = 'waiting_on'", orderBy: 'updated_at asc, id asc' },
  completed: { where: "status = 'completed'", orderBy: 'completed_at desc, id asc' },
  deleted: { where: "status = 'deleted'", orderBy: 'deleted_at desc, id asc' },
};

/** What a change reads (`readForChange`). */
export interface ChangeNeeds {
  /** one of the user's tasks */
  taskId?: string | undefined;
  /** a task of any user */
  anyId?: string | undefined;
  /**
   * The part of the user's dependency graph reachable from these tasks (TASK-6: a change's new dependencies),
   * which is all that the checks need, never the user's whole graph
   */
  graphFrom?: readonly string[] | undefined;
  /** the open dependencies of this task */
  openDependenciesOf?: string | undefined;
  /** whether the next occurrence this task made (TASK-3) still exists */
  nextOccurrenceOf?: string | undefined;
}

export interface ChangeState {
  owner: TaskOwner;
  /** read from this node's cache (`change-cache.ts`), not from PostgreSQL */
  cached?: boolean;
  task: TaskRecord | undefined;
  anyTask?: TaskRecord | undefined;
  /** the user's tasks reachable from `graphFrom`, each with its dependencies */
  graph?: Map<string, string[]> | undefined;
  openDependencies?: string[];
  /** with `nextOccurrenceOf`: its next occurrence is still stored (not purged) */
  nextOccurrenceExists?: boolean;
}

interface OwnerRow {
  taskSeq: number;
  tombstoneFloorSeq: number;
  timezone: string;
}

export type TasksRepository = ReturnType<typeof createTasksRepository>;

export function createTasksRepository(sql: Sql) {
  const taskColumns = sql(columns as unknown as string[]);
  /** The task's columns as `t.<column>`. */
  const prefixedColumns = sql.unsafe(columns.map((c) => `t.${c}`).join(', '));
  /**
   * The column list of an insert, and the record `r`'s columns: an insert names them, since `search` is generated by
   * PostgreSQL (CHAT-11). Plain text, not the `sql(columns)` helper, which after `insert into tasks (` writes a VALUES list.
   */
  const insertColumns = sql.unsafe(columns.join(', '));
  const recordColumns = sql.unsafe(columns.map((c) => `r.${c}`).join(', '));
  /** `(title, …) = (r.title, …)`: every column a change may alter, from the record `r`. */
  const setFromRecord = sql.unsafe(`(${mutableColumns.join(', ')}) = (${mutableColumns.map((c) => `r.${c}`).join(', ')})`);
  const ownerOf = (row: OwnerRow): TaskOwner => ({
    seq: row.taskSeq,
    tombstoneFloorSeq: row.tombstoneFloorSeq,
    timezone: row.timezone,
  });
  const ownerQuery = (q: ISql, userId: string) =>
    q<OwnerRow[]>`select task_seq, tombstone_floor_seq, timezone from users where id = ${userId}`;

  /** A view's read: the owner and the tasks on one snapshot, so that `seq` matches the tasks. */
  async function view(userId: string, tasks: (q: ISql) => postgres.PendingQuery<TaskRecord[]>) {
    const [owners, rows] = await snapshot(sql, (q) => [ownerQuery(q, userId), tasks(q)] as const);
    const owner = owners[0];
    return owner ? { owner: ownerOf(owner), tasks: rows as TaskRecord[] } : undefined;
  }

  /**
   * The owner and one of their tasks (or none, `taskId` null) for many
   * changes, in one statement: each row of one snapshot, so each task
   * matches the seq read with it.
   */
  const readOwnerAndTask = batched(async (keys: { userId: string; taskId: string | null }[]): Promise<(ChangeState | undefined)[]> => {
    const rows = await sql<({ n: string } & OwnerRow & Partial<TaskRecord>)[]>`
      select k.n, u.task_seq, u.tombstone_floor_seq, u.timezone, ${prefixedColumns}
        from unnest(${keys.map((k) => k.userId)}::uuid[], ${keys.map((k) => k.taskId)}::uuid[]) with ordinality as k(user_id, task_id, n)
        join users u on u.id = k.user_id
        left join tasks t on t.id = k.task_id and t.user_id = u.id`;
    const states: (ChangeState | undefined)[] = keys.map(() => undefined);
    for (const { n, taskSeq, tombstoneFloorSeq, timezone, ...task } of rows) {
      states[Number(n) - 1] = { owner: ownerOf({ taskSeq, tombstoneFloorSeq, timezone }), task: task.id ? (task as TaskRecord) : undefined };
    }
    return states;
  }, readWindow);

  /**
   * The statement that writes changes if each user's seq is still the one
   * the change was decided on, returning the users whose change applied:
   * each kind of write is a part of it only when there are writes of that
   * kind (a few statement shapes, each prepared once), and every lookup goes
   * by primary key (`= any(ids)`), so that the plan stays an index scan
   * however big the tables.
   */
  function writeStatement(q: Sql, changes: readonly TaskChange[]) {
    const [change] = changes;
    const only = change?.writes.updated[0];
    const reminders = changes.flatMap((c) => (c.writes.reminders ? [{ userId: c.userId, ...c.writes.reminders }] : []));
    if (
      changes.length === 1 &&
      only &&
      change.writes.updated.length === 1 &&
      change.writes.inserted.length === 0 &&
      change.writes.purged.length === 0 &&
      reminders.length === 0
    ) {
      // The most common change, one altered task, as a plain statement.
      return q<{ id: string }[]>`
        with bump as (
          update users set task_seq = ${change.toSeq} where id = ${change.userId} and task_seq = ${change.fromSeq} returning id
        ), updated as (
          update tasks t set
            title = ${only.title}, description = ${only.description}, deadline = ${only.deadline}, intensity = ${only.intensity},
            status = ${only.status}, project = ${only.project}, waiting_on = ${only.waitingOn}, dependencies = ${only.dependencies}::uuid[],
            recurrence = ${only.recurrence === null ? null : q.json(only.recurrence as unknown as postgres.JSONValue)}::jsonb,
            series_day = ${only.seriesDay}, next_occurrence_id = ${only.nextOccurrenceId}::uuid, status_before_delete = ${only.statusBeforeDelete},
            version = ${only.version}, seq = ${only.seq}, updated_at = ${only.updatedAt}, completed_at = ${only.completedAt}, deleted_at = ${only.deletedAt},
            remind_at = ${only.remindAt}, reminder_id = ${only.reminderId}::uuid
            from bump where t.id = ${only.id} and t.user_id = bump.id
          returning 1
        )
        select id from bump`;
    }
    const json = (value: unknown) => q.json(value as postgres.JSONValue);
    const userIds = changes.map((c) => c.userId);
    const inserted = changes.flatMap((c) => c.writes.inserted);
    const updated = changes.flatMap((c) => c.writes.updated);
    const purged = changes.flatMap((c) => c.writes.purged.map((p) => ({ userId: c.userId, ...p })));
    const remindersSet = reminders.flatMap((r) => r.set.map((set) => ({ userId: r.userId, ...set })));
    const remindersCleared = reminders.flatMap((r) => r.cleared.map((id) => ({ userId: r.userId, id })));
    const none = q``;
    return q<{ id: string }[]>`
      with bump as (
        update users u set task_seq = c.to_seq
          from unnest(${userIds}::uuid[], ${changes.map((c) => c.fromSeq)}::int[], ${changes.map((c) => c.toSeq)}::int[]) as c(user_id, from_seq, to_seq)
         where u.id = any(${userIds}::uuid[]) and u.id = c.user_id and u.task_seq = c.from_seq
        returning u.id
      )${
        inserted.length === 0
          ? none
          : q`, inserted as (
        insert into tasks (${insertColumns})
        select ${recordColumns} from jsonb_populate_recordset(null::tasks, ${json(inserted.map(toJsonRow))}) r join bump on bump.id = r.user_id
        returning 1
      )`
      }${
        updated.length === 0
          ? none
          : q`, updated as (
        update tasks t set ${setFromRecord}
          from jsonb_populate_recordset(null::tasks, ${json(updated.map(toJsonRow))}) r join bump on bump.id = r.user_id
         where t.id = any(${updated.map((t) => t.id)}::uuid[]) and t.id = r.id and t.user_id = r.user_id
        returning 1
      )`
      }${
        purged.length === 0
          ? none
          : q`, purges as materialized (
        select p.* from unnest(${purged.map((p) => p.userId)}::uuid[], ${purged.map((p) => p.id)}::uuid[], ${purged.map((p) => p.seq)}::int[]) as p(user_id, id, seq)
          join bump on bump.id = p.user_id
      ), purged as (
        delete from tasks t using purges p where t.id = any(${purged.map((p) => p.id)}::uuid[]) and t.id = p.id and t.user_id = p.user_id
        returning 1
      ), tombstones as (
        insert into task_tombstones (id, user_id, task_id, seq, purged_at)
        select gen_random_uuid(), p.user_id, p.id, p.seq, ${changes[0]!.now} from purges p
        returning 1
      )`
      }${
        remindersCleared.length === 0
          ? none
          : q`, reminders_cleared as (
        delete from reminders d
          using unnest(${remindersCleared.map((r) => r.userId)}::uuid[], ${remindersCleared.map((r) => r.id)}::uuid[]) as c(user_id, id)
          join bump on bump.id = c.user_id
         where d.id = any(${remindersCleared.map((r) => r.id)}::uuid[]) and d.id = c.id and d.user_id = c.user_id
        returning 1
      )`
      }${
        remindersSet.length === 0
          ? none
          : q`, reminders_set as (
        -- A task's new reminder takes the place of its old one (one per task), in whatever state that was.
        insert into reminders (id, user_id, task_id, fires_at, state, late, claimed_until, fired_at, created_at, updated_at)
        select r.id, r.user_id, r.task_id, r.fires_at, 'pending', r.late, null, null, ${changes[0]!.now}, ${changes[0]!.now}
          from unnest(${remindersSet.map((r) => r.id)}::uuid[], ${remindersSet.map((r) => r.userId)}::uuid[], ${remindersSet.map((r) => r.taskId)}::uuid[],
                      ${remindersSet.map((r) => r.firesAt.toISOString())}::timestamptz[], ${remindersSet.map((r) => String(r.late))}::boolean[]) as r(id, user_id, task_id, fires_at, late)
          join bump on bump.id = r.user_id
        on conflict (task_id) do update set
          id = excluded.id, fires_at = excluded.fires_at, state = 'pending', late = excluded.late, claimed_until = null, fired_at = null,
          updated_at = excluded.updated_at
        returning 1
      )`
      }
        select id from bump`;
  }

  /**
   * Writes the changes of many users asked in the same loop turn (or while
   * the previous batch was out) in one statement, so one commit. A user has
   * at most one change in a batch (a node runs a user's changes one after
   * another, `TasksService`). Resolves, per change, whether it applied, or
   * the error that failed it. A statement that fails applies nothing: its
   * changes are then written one by one, so that an error reaches only the
   * change that causes it. A deadlock PostgreSQL broke (two nodes' batches
   * locking the same users in another order) applies nothing, and the
   * changes decide again.
   */
  const writeBatch = batched(async (changes: TaskChange[]): Promise<(boolean | Error)[]> => {
    const write = async (batch: TaskChange[]): Promise<boolean[]> => {
      const applied = new Set((await writeStatement(sql, batch)).map((row) => row.id));
      return batch.map((c) => applied.has(c.userId));
    };
    const deadlock = (err: unknown) => err instanceof postgres.PostgresError && err.code === DEADLOCK_DETECTED;
    try {
      return await write(changes);
    } catch (err) {
      if (deadlock(err)) return changes.map(() => false);
      if (changes.length === 1) return [err as Error];
      return Promise.all(changes.map((c) => write([c]).then(([applied]) => applied!, (alone: unknown) => (deadlock(alone) ? false : (alone as Error)))));
    }
  }, writeWindow);

  return {
    /** The user's seq and time zone; undefined when the user does not exist. */
    async owner(userId: string): Promise<TaskOwner | undefined> {
      const [row] = await ownerQuery(sql, userId);
      return row ? ownerOf(row) : undefined;
    },

    /** One of the user's tasks; undefined for another user's or an unknown id. */
    async findOwned(userId: string, id: string): Promise<TaskRecord | undefined> {
      const [row] = await sql<TaskRecord[]>`select ${taskColumns} from tasks where id = ${id} and user_id = ${userId}`;
      return row;
    },

    /**
     * What a change needs to decide, all of one snapshot (so consistent with
     * the seq read with it): the owner, and as asked one of the user's tasks,
     * the task of `anyId` whoever owns it (TASK-1: a client-chosen id may be
     * taken), the part of the user's dependency graph a change's new dependencies reach (TASK-6), the dependencies of
     * `openDependenciesOf` not yet completed. Undefined when the user does not
     * exist. The common case, the owner and one task, is a single statement.
     */
    async readForChange(userId: string, needs: ChangeNeeds): Promise<ChangeState | undefined> {
      const { taskId = null, anyId, graphFrom, openDependenciesOf, nextOccurrenceOf } = needs;
      if (anyId === undefined && !graphFrom?.length && openDependenciesOf === undefined && nextOccurrenceOf === undefined) {
        const state = await readOwnerAndTask({ userId, taskId });
        return state && graphFrom ? { ...state, graph: new Map() } : state;
      }
      const [owners, tasks, others, edges, open, next] = await snapshot(
        sql,
        (q) =>
          [
            ownerQuery(q, userId),
            q<TaskRecord[]>`select ${taskColumns} from tasks where id = ${taskId}::uuid and user_id = ${userId}`,
            q<TaskRecord[]>`select ${taskColumns} from tasks where id = ${anyId ?? null}::uuid`,
            q<{ id: string; dependencies: string[] }[]>`
              with recursive reach (id, dependencies) as (
                select id, dependencies from tasks where user_id = ${userId} and id = any(${(graphFrom ?? []) as string[]}::uuid[])
                union
                select t.id, t.dependencies from tasks t join reach r on t.id = any(r.dependencies) where t.user_id = ${userId}
              )
              select id, dependencies from reach`,
            q<{ id: string }[]>`
              select d.id from tasks d
               where d.user_id = ${userId} and d.status <> 'completed'
                 and d.id = any(select unnest(t.dependencies) from tasks t where t.id = ${openDependenciesOf ?? null}::uuid and t.user_id = ${userId})`,
            q<{ id: string }[]>`
              select n.id from tasks n
               where n.user_id = ${userId}
                 and n.id = (select t.next_occurrence_id from tasks t where t.id = ${nextOccurrenceOf ?? null}::uuid and t.user_id = ${userId})`,
          ] as const,
      );
      const owner = owners[0];
      if (!owner) return undefined;
      return {
        owner: ownerOf(owner),
        task: tasks[0],
        anyTask: others[0],
        graph: graphFrom ? new Map(edges.map((r) => [r.id, r.dependencies])) : undefined,
        openDependencies: open.map((r) => r.id),
        ...(nextOccurrenceOf !== undefined && { nextOccurrenceExists: next.length > 0 }),
      };
    },

    /** The user's tasks among `ids` (the purge job re-reads its candidates), in seq order. */
    async ownedAmong(userId: string, ids: readonly string[]): Promise<TaskRecord[]> {
      return sql<TaskRecord[]>`select ${taskColumns} from tasks where user_id = ${userId} and id = any(${ids as string[]}::uuid[]) order by seq`;
    },

    /**
     * Writes a change if the user's seq is still `fromSeq`, moving it to
     * `toSeq`; resolves false when another change came first, and then
     * nothing was written. The changes of many users asked in the same
     * event-loop turn (or while the previous batch was out) are written by
     * one statement, so one commit; each applies or not on its own.
     */
    async save(change: TaskChange): Promise<boolean> {
      const outcome = await writeBatch(change);
      if (outcome instanceof Error) throw outcome;
      return outcome;
    },

    /** A list view (`task:list`), optionally of one project, with the owner on the same snapshot. */
    list(userId: string, listView: TaskListView, project?: string) {
      const { where, orderBy } = listViews[listView];
      return view(userId, (q) =>
        project === undefined
          ? q<TaskRecord[]>`select ${taskColumns} from tasks where user_id = ${userId} and ${q.unsafe(where)} order by ${q.unsafe(orderBy)}`
          : q<TaskRecord[]>`select ${taskColumns} from tasks where user_id = ${userId} and ${q.unsafe(where)} and project = ${project} order by ${q.unsafe(orderBy)}`,
      );
    },

    /**
     * The user's open tasks (the `active` view), in one plain read: what the assistant's prompt lists. On `q`
     * when given: a connection whose other statements it then shares a round trip with.
     */
    open(userId: string, q: ISql = sql) {
      const { where, orderBy } = listViews.active;
      return q<TaskRecord[]>`select ${taskColumns} from tasks where user_id = ${userId} and ${q.unsafe(where)} order by ${q.unsafe(orderBy)}`;
    },

    /** Every task of the user, trash included, oldest first, with the owner on the same snapshot. */
    all(userId: string) {
      return view(userId, (q) => q<TaskRecord[]>`select ${taskColumns} from tasks where user_id = ${userId} order by created_at, id`);
    },

    /**
     * SYNC-1: the tasks changed and the ids purged after `since`, with the
     * owner, on one snapshot. Past the tombstone floor or ahead of the user's
     * seq the answer must be every task (`reset`): decided in SQL too, so that
     * the reads go out in one round trip.
     */
    async changesSince(userId: string, since: number) {
      const [owners, tasks, tombstones] = await snapshot(
        sql,
        (q) =>
          [
            ownerQuery(q, userId),
            q<TaskRecord[]>`
              select ${taskColumns} from tasks where user_id = ${userId} and seq > (
                select case when ${since}::bigint < tombstone_floor_seq or ${since}::bigint > task_seq then -1 else ${since}::bigint end
                  from users where id = ${userId})
              order by seq`,
            q<{ taskId: string }[]>`select task_id from task_tombstones where user_id = ${userId} and seq > ${since}::bigint order by seq`,
          ] as const,
      );
      const owner = owners[0];
      if (!owner) return undefined;
      return { owner: ownerOf(owner), tasks: tasks as TaskRecord[], purged: tombstones.map((t) => t.taskId) };
    },

    /** Completed and deleted tasks that reached the purge age (TASK-4), by user then seq. */
    expired(cutoff: Date) {
      return sql<{ id: string; userId: string }[]>`
        select id, user_id from tasks
         where (status = 'completed' and completed_at < ${cutoff}) or (status = 'deleted' and deleted_at < ${cutoff})
         order by user_id, seq`;
    },

    /**
     * Prunes purge records older than `cutoff` and raises each user's floor
     * past them, in one statement, so that both become visible together.
     */
    async pruneTombstones(cutoff: Date): Promise<void> {
      await sql`
        with pruned as (delete from task_tombstones where purged_at < ${cutoff} returning user_id, seq)
        update users u set tombstone_floor_seq = greatest(u.tombstone_floor_seq, f.max_seq)
          from (select user_id, max(seq) as max_seq from pruned group by user_id) f
         where u.id = f.user_id`;
    },
  };

}
