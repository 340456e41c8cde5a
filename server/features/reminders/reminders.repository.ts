/**
 * Every SQL statement of reminders apart from their writes with their task
 * (`tasks.repository.ts`): the claim loop's claims, the user's list, snooze
 * and dismiss. Rows come back as `ReminderRow`s, with the task's title.
 */
import type { Sql } from '../../db/postgres.js';
import type { StoredReminderState } from './reminder.entity.js';

export interface ReminderRow {
  id: string;
  userId: string;
  taskId: string;
  title: string;
  firesAt: Date;
  late: boolean;
  state: StoredReminderState;
}

export type RemindersRepository = ReturnType<typeof createRemindersRepository>;

/** The columns of a `ReminderRow`, from `reminders r` joined with `tasks t`. */
const rowColumns = 'r.id, r.user_id, r.task_id, t.title, r.fires_at, r.late, r.state';

export function createRemindersRepository(sql: Sql) {
  const columns = sql.unsafe(rowColumns);
  return {
    /**
     * Claims up to `limit` reminders to fire: those whose time has come and
     * those whose firing node's lease ran out (it died mid-fire, REM-2). Each
     * moves to `firing` with a lease of `leaseMs`, so that exactly one node
     * fires it. `FOR UPDATE SKIP LOCKED`: nodes claiming at the same moment
     * take different rows instead of queueing behind each other's locks. A
     * reminder fired more than `lateAfterMs` after its time is late.
     */
    async claimDue(limit: number, leaseMs: number, lateAfterMs: number): Promise<ReminderRow[]> {
      return sql<ReminderRow[]>`
        with fell_due as (
          select id from reminders where state = 'pending' and fires_at <= now() order by fires_at limit ${limit} for update skip locked
        ), lease_ran_out as (
          select id from reminders where state = 'firing' and claimed_until < now() order by claimed_until limit ${limit} for update skip locked
        ), picked as (
          select id from fell_due union all select id from lease_ran_out
        ), claimed as (
          update reminders r set
            state = 'firing',
            claimed_until = now() + ${leaseMs} * interval '1 millisecond',
            late = r.late or r.state = 'firing' or r.fires_at < now() - ${lateAfterMs} * interval '1 millisecond',
            updated_at = now()
            from picked where r.id = picked.id
          returning r.*
        )
        select ${columns} from claimed r join tasks t on t.id = r.task_id order by r.fires_at`;
    },

    /**
     * Marks fired reminders delivered (`due`), those still `firing` only: one
     * snoozed, dismissed or cleared meanwhile keeps what that did. Returns the
     * ids marked.
     */
    async markDelivered(ids: readonly string[]): Promise<Set<string>> {
      if (ids.length === 0) return new Set();
      const rows = await sql<{ id: string }[]>`
        update reminders set state = 'due', claimed_until = null, fired_at = now(), updated_at = now()
         where id = any(${ids as string[]}::uuid[]) and state = 'firing'
        returning id`;
      return new Set(rows.map((r) => r.id));
    },

    /** These reminders as they are now (those that still exist). */
    async byIds(ids: readonly string[]): Promise<ReminderRow[]> {
      if (ids.length === 0) return [];
      return sql<ReminderRow[]>`select ${columns} from reminders r join tasks t on t.id = r.task_id where r.id = any(${ids as string[]}::uuid[])`;
    },

    /** REM-3: the user's reminders that fired and are not dismissed, oldest first. */
    async listDue(userId: string): Promise<ReminderRow[]> {
      return sql<ReminderRow[]>`
        select ${columns} from reminders r join tasks t on t.id = r.task_id
         where r.user_id = ${userId} and r.state in ('firing', 'due')
         order by r.fires_at, r.id`;
    },

    /** REM-4: the user's reminder fires again at `until`; undefined for another user's or an unknown id. */
    async snooze(userId: string, id: string, until: Date): Promise<ReminderRow | undefined> {
      const [row] = await sql<ReminderRow[]>`
        with snoozed as (
          update reminders set state = 'pending', fires_at = ${until}, late = false, claimed_until = null, updated_at = now()
           where id = ${id} and user_id = ${userId}
          returning *
        )
        select ${columns} from snoozed r join tasks t on t.id = r.task_id`;
      return row;
    },

    /** REM-4: the user's reminder is dismissed; undefined for another user's or an unknown id. */
    async dismiss(userId: string, id: string): Promise<ReminderRow | undefined> {
      const [row] = await sql<ReminderRow[]>`
        with dismissed as (
          update reminders set state = 'dismissed', claimed_until = null, updated_at = now()
           where id = ${id} and user_id = ${userId}
          returning *
        )
        select ${columns} from dismissed r join tasks t on t.id = r.task_id`;
      return row;
    },
  };
}
