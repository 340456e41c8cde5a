/** The repositories' PostgreSQL helpers (`server/db/postgres.ts`) against the real server. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabaseUrl } from './support/env.js';
import { createPostgres, isUniqueViolation, snapshot, transaction, type Sql } from '../server/db/postgres.js';
import { isUnavailableError } from '../server/errors.js';

let sql: Sql;
const table = `pg_client_test_${process.pid}`;

beforeAll(async () => {
  // One connection, so that every statement below meets what the previous ones left on it.
  sql = createPostgres(testDatabaseUrl(), { max: 1 });
  await sql`create table ${sql(table)} (id int primary key, note text not null)`;
});
afterAll(async () => {
  await sql`drop table if exists ${sql(table)}`;
  await sql.end();
});

const rows = (ids: number[]) => sql<{ id: number; note: string }[]>`select id, note from ${sql(table)} where id = any(${ids}::int[]) order by id`;

describe('transaction', () => {
  it('commits what work read and wrote, and the statements given to atCommit, and returns its result', async () => {
    const result = await transaction(sql, async (tx) => {
      await tx.sql`insert into ${sql(table)} (id, note) values (1, 'one')`;
      const seen = await tx.sql`select note from ${sql(table)} where id = 1`;
      tx.atCommit(tx.sql`insert into ${sql(table)} (id, note) values (2, 'two')`);
      return seen[0]!.note as string;
    });
    expect(result).toBe('one');
    expect(await rows([1, 2])).toEqual([
      { id: 1, note: 'one' },
      { id: 2, note: 'two' },
    ]);
  });

  it('rolls everything back when a statement sent with the COMMIT fails, and rethrows its error', async () => {
    const attempt = transaction(sql, async (tx) => {
      await tx.sql`update ${sql(table)} set note = 'changed' where id = 2`;
      tx.atCommit(tx.sql`insert into ${sql(table)} (id, note) values (3, 'three')`, tx.sql`insert into ${sql(table)} (id, note) values (1, 'duplicate')`);
    });
    const err = await attempt.catch((e: unknown) => e);
    expect(isUniqueViolation(err)).toBe(true);
    expect(await rows([2, 3])).toEqual([{ id: 2, note: 'two' }]);
  });

  it('rolls back when work throws, and the connection serves the next transaction', async () => {
    await expect(
      transaction(sql, async (tx) => {
        await tx.sql`insert into ${sql(table)} (id, note) values (4, 'four')`;
        throw new Error('refused by a rule');
      }),
    ).rejects.toThrow('refused by a rule');
    expect(await rows([4])).toEqual([]);
    await transaction(sql, async (tx) => void tx.atCommit(tx.sql`insert into ${sql(table)} (id, note) values (4, 'four')`));
    expect(await rows([4])).toEqual([{ id: 4, note: 'four' }]);
  });

  it('rolls back when one of its reads fails', async () => {
    await expect(
      transaction(sql, async (tx) => {
        await tx.sql`insert into ${sql(table)} (id, note) values (5, 'five')`;
        await tx.sql`select 1 / 0`;
      }),
    ).rejects.toMatchObject({ code: '22012' });
    expect(await rows([5])).toEqual([]);
  });

  it('fails as unavailable when PostgreSQL ends its connection midway, and the pool serves the next one', async () => {
    // postgres.js 3.4.x wrote to such a reserved connection from a setImmediate and killed the process (porsager/postgres#1208).
    const other = createPostgres(testDatabaseUrl(), { max: 1 });
    try {
      const attempt = transaction(sql, async (tx) => {
        const [backend] = await tx.sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
        await other`select pg_terminate_backend(${backend!.pid}::int)`;
        await Promise.all([tx.sql`select 1`, tx.sql`select 2`]);
      });
      const err = await attempt.catch((e: unknown) => e);
      expect(isUnavailableError(err)).toBe(true);
      expect(await rows([1])).toEqual([{ id: 1, note: 'one' }]);
    } finally {
      await other.end();
    }
  });
});

describe('snapshot', () => {
  it('returns each statement’s rows, in order', async () => {
    const [one, two] = await snapshot(sql, (q) => [q`select note from ${sql(table)} where id = 1`, q`select count(*)::int as n from ${sql(table)}`] as const);
    expect(one).toEqual([{ note: 'one' }]);
    expect(two[0]!.n).toBeGreaterThan(0);
  });

  it('sees one snapshot: a commit made between its statements is not seen', async () => {
    const other = createPostgres(testDatabaseUrl(), { max: 1 });
    try {
      const reads = snapshot(sql, (q) => [q`select count(*)::int as n from ${sql(table)}`, q`select pg_sleep(0.3)`, q`select count(*)::int as n from ${sql(table)}`] as const);
      await new Promise((resolve) => setTimeout(resolve, 100));
      await other`insert into ${other(table)} (id, note) values (100, 'meanwhile')`;
      const [before, , after] = await reads;
      expect(after[0]!.n).toBe(before[0]!.n);
      expect(await rows([100])).toEqual([{ id: 100, note: 'meanwhile' }]);
    } finally {
      await other.end();
    }
  });

  it('fails whole when one statement fails, and the connection serves the next read', async () => {
    await expect(snapshot(sql, (q) => [q`select 1`, q`select 1 / 0`] as const)).rejects.toMatchObject({ code: '22012' });
    expect(await rows([1])).toEqual([{ id: 1, note: 'one' }]);
  });
});
