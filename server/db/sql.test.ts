import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { MikroORM, UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { ormOptions } from './orm.js';
import { createSqlPool, type SqlPool } from './sql.js';

// One connection, so that every statement below meets what the previous ones left on it.
let orm: MikroORM;
let sql: SqlPool;
const table = `sql_test_${process.pid}`;

beforeAll(async () => {
  orm = await MikroORM.init(ormOptions({ databaseUrl: inject('databaseUrl') }, { pool: { min: 1, max: 1 } }));
  sql = createSqlPool(orm);
  await sql.query(`create table ${table} (id int primary key, note text not null)`);
});
afterAll(async () => {
  await sql.query(`drop table if exists ${table}`);
  await orm.close(true);
});

const insert = `insert into ${table} (id, note) values ($1, $2)`;
const select = `select id, note from ${table} where id = any($1::int[]) order by id`;

describe('plain SQL pool', () => {
  it('runs the first statements with the BEGIN and the last ones with the COMMIT, and hands back their rows', async () => {
    const result = await sql.transaction(
      async (tx, [inserted, seen]) => {
        expect(inserted).toEqual([{ id: 1 }]);
        expect(seen).toEqual([{ id: 1, note: 'one' }]);
        tx.atCommit([{ text: insert, params: [2, 'two'] }]);
        return 'done';
      },
      [
        { text: `${insert} returning id`, params: [1, 'one'] },
        { text: select, params: [[1]] },
      ],
    );
    expect(result).toBe('done');
    expect(await sql.query(select, [[1, 2]])).toEqual([
      { id: 1, note: 'one' },
      { id: 2, note: 'two' },
    ]);
  });

  it('rolls back everything when a statement sent with the COMMIT fails, with the ORM\'s error class', async () => {
    const attempt = sql.transaction(
      async (tx) => {
        tx.atCommit([
          { text: insert, params: [3, 'three'] },
          { text: insert, params: [1, 'duplicate'] },
        ]);
      },
      [{ text: `update ${table} set note = $1 where id = $2`, params: ['changed', 2] }],
    );
    await expect(attempt).rejects.toBeInstanceOf(UniqueConstraintViolationException);
    expect(await sql.query(select, [[2, 3]])).toEqual([{ id: 2, note: 'two' }]);
  });

  it('keeps its record of prepared statements exact after a pipeline cut short: the same statements work again', async () => {
    const fresh = `insert into ${table} (id, note) values ($1, $2 || '')`;
    // The first insert is parsed (and prepared); the second fails; a third, never parsed, is skipped.
    const cut = sql.transaction(async (tx) => {
      tx.atCommit([
        { text: fresh, params: [10, 'ten'] },
        { text: fresh, params: [10, 'again'] },
        { text: `${fresh} returning id`, params: [11, 'eleven'] },
      ]);
    });
    await expect(cut).rejects.toBeInstanceOf(UniqueConstraintViolationException);
    await sql.transaction(async (tx) => {
      tx.atCommit([
        { text: fresh, params: [10, 'ten'] },
        { text: `${fresh} returning id`, params: [11, 'eleven'] },
      ]);
    });
    expect(await sql.query(select, [[10, 11]])).toEqual([
      { id: 10, note: 'ten' },
      { id: 11, note: 'eleven' },
    ]);
  });

  it('reads several statements on one snapshot in one round trip, and refuses writes in it', async () => {
    const [rows, counted] = await sql.snapshot([
      { text: select, params: [[1, 2]] },
      { text: `select count(*)::int as n from ${table} where id = any($1::int[])`, params: [[1, 2, 3]] },
    ]);
    expect(rows).toEqual([
      { id: 1, note: 'one' },
      { id: 2, note: 'two' },
    ]);
    expect(counted).toEqual([{ n: 2 }]);
    await expect(sql.snapshot([{ text: insert, params: [20, 'twenty'] }])).rejects.toThrow(/read-only/);
    // Rolled back, and the one connection is usable again.
    expect(await sql.query(select, [[20]])).toEqual([]);
    expect(await sql.snapshot([{ text: select, params: [[2]] }])).toEqual([[{ id: 2, note: 'two' }]]);
  });

  it('sees one snapshot: a commit made between its statements is not seen', async () => {
    const other = await MikroORM.init(ormOptions({ databaseUrl: inject('databaseUrl') }, { pool: { min: 1, max: 1 } }));
    try {
      // A row that is inserted by another connection while the snapshot's first statement sleeps.
      const sleeping = sql.snapshot([
        { text: 'select pg_sleep(0.3)' },
        { text: select, params: [[30]] },
      ]);
      await new Promise((r) => setTimeout(r, 100));
      await createSqlPool(other).query(insert, [30, 'thirty']);
      const [, seen] = await sleeping;
      expect(seen).toEqual([]);
      expect(await sql.query(select, [[30]])).toEqual([{ id: 30, note: 'thirty' }]);
    } finally {
      await other.close(true);
    }
  });
});
