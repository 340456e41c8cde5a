/**
 * SQL of the users table outside the auth lifecycle's entities: the rows the
 * connect path and the ops view read, and the operators' grants (§3a).
 */
import type { Role } from '../../../shared/schemas/auth.js';
import type { Sql } from '../../db/postgres.js';

/** What `session:ready` needs of a user (RT-2). */
export interface ReadyUserRow {
  id: string;
  email: string;
  fullName: string;
  timezone: string;
  role: Role;
  createdAt: Date;
  /** when two-factor sign-in was turned on, null when off */
  mfaEnabledAt: Date | null;
  taskSeq: number;
  /** REM-3: reminders due and not dismissed */
  dueReminders: number;
}

export type UsersRepository = ReturnType<typeof createUsersRepository>;

export function createUsersRepository(sql: Sql) {
  return {
    /** The users of `ids` in that order (undefined for an unknown id), in one statement. */
    async readyRows(ids: readonly string[]): Promise<(ReadyUserRow | undefined)[]> {
      const rows = await sql<ReadyUserRow[]>`
        select id, email, full_name, timezone, role, created_at, mfa_enabled_at, task_seq,
               (select count(*) from reminders r where r.user_id = users.id and r.state in ('firing', 'due'))::int as due_reminders
          from users where id = any(${ids as string[]}::uuid[])`;
      const byId = new Map(rows.map((row) => [row.id, row]));
      return ids.map((id) => byId.get(id));
    },

    /** Changes the profile's fields given; the account's row after, or undefined when there is no such account. */
    async updateProfile(id: string, patch: { fullName?: string | undefined; timezone?: string | undefined }) {
      const [row] = await sql<Omit<ReadyUserRow, 'taskSeq' | 'dueReminders'>[]>`
        update users set full_name = coalesce(${patch.fullName ?? null}, full_name), timezone = coalesce(${patch.timezone ?? null}, timezone), updated_at = now()
         where id = ${id}
        returning id, email, full_name, timezone, role, created_at, mfa_enabled_at`;
      return row;
    },

    /** Sets the role of the account with `email`: its id and the role it had, or undefined when there is no such account. */
    async setRole(email: string, role: Role): Promise<{ id: string; previous: Role } | undefined> {
      const [row] = await sql<{ id: string; previous: Role }[]>`
        update users u set role = ${role}, updated_at = now()
          from (select id, role from users where email = ${email} for update) old
         where u.id = old.id
        returning u.id, old.role as previous`;
      return row;
    },

    /** The id of the account with `email`, or undefined when there is none (the operators' `sign-out`, `disconnect`). */
    async idByEmail(email: string): Promise<string | undefined> {
      const [row] = await sql<{ id: string }[]>`select id from users where email = ${email}`;
      return row?.id;
    },

    /** The admins' emails, in order. */
    async adminEmails(): Promise<string[]> {
      const rows = await sql<{ email: string }[]>`select email from users where role = 'admin' order by email`;
      return rows.map((row) => row.email);
    },

    /** The email of each of `ids` that exists. */
    async emails(ids: readonly string[]): Promise<Map<string, string>> {
      if (ids.length === 0) return new Map();
      const rows = await sql<{ id: string; email: string }[]>`select id, email from users where id = any(${ids as string[]}::uuid[])`;
      return new Map(rows.map((row) => [row.id, row.email]));
    },
  };
}
