/** SQL of the users table outside the auth lifecycle's entities: the rows the connect path and the ops view read. */
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
  taskSeq: number;
}

export type UsersRepository = ReturnType<typeof createUsersRepository>;

export function createUsersRepository(sql: Sql) {
  return {
    /** The users of `ids` in that order (undefined for an unknown id), in one statement. */
    async readyRows(ids: readonly string[]): Promise<(ReadyUserRow | undefined)[]> {
      const rows = await sql<ReadyUserRow[]>`
        select id, email, full_name, timezone, role, created_at, task_seq from users where id = any(${ids as string[]}::uuid[])`;
      const byId = new Map(rows.map((row) => [row.id, row]));
      return ids.map((id) => byId.get(id));
    },

    /** The email of each of `ids` that exists. */
    async emails(ids: readonly string[]): Promise<Map<string, string>> {
      if (ids.length === 0) return new Map();
      const rows = await sql<{ id: string; email: string }[]>`select id, email from users where id = any(${ids as string[]}::uuid[])`;
      return new Map(rows.map((row) => [row.id, row.email]));
    },
  };
}
