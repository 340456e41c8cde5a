import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { MikroORM, UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { ormOptions } from './orm.js';
import { createSqlPool, type SqlPool, type Transaction } from './sql.js';

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

describe('group commit (transaction with a group)', () => {
  const txid = { text: 'select txid_current()::text as tx' };
  const noteOf = async (id: number) => (await sql.query<{ note: string }>(select, [[id]]))[0]?.note;
  /** A member that inserts `id` at its commit and returns its transaction id. */
  const member = (group: string, id: number, extra: (tx: Transaction) => Promise<void> = async () => {}) =>
    sql.transaction(
      async (tx, [rows]) => {
        await extra(tx);
        tx.atCommit([{ text: insert, params: [id, group] }]);
        return (rows![0] as { tx: string }).tx;
      },
      [txid],
      { group },
    );

  it('commits the transactions of different groups asked in one loop turn as one, each with its own rows and result', async () => {
    const txids = await Promise.all([member('a', 40), member('b', 41), member('c', 42)]);
    expect(new Set(txids).size).toBe(1);
    expect(await sql.query(select, [[40, 41, 42]])).toEqual([
      { id: 40, note: 'a' },
      { id: 41, note: 'b' },
      { id: 42, note: 'c' },
    ]);
  });

  it('gives a member whose work throws its own error, and commits the others without it', async () => {
    const results = await Promise.allSettled([
      member('a', 43),
      member('b', 44, async (tx) => {
        await tx.query(insert, [44, 'written before b threw']); // must be rolled back
        throw new Error('refused by b');
      }),
      member('c', 45),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason.message).toBe('refused by b');
    expect([await noteOf(43), await noteOf(44), await noteOf(45)]).toEqual(['a', undefined, 'c']);
  });

  it('sends a PostgreSQL error only to the member that causes it, at the commit or in its work', async () => {
    const results = await Promise.allSettled([
      member('a', 46),
      member('b', 40), // 40 exists: the batch's COMMIT round trip fails
      member('c', 47, async (tx) => {
        await tx.query('select 1 / 0');
      }),
      member('d', 48),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(UniqueConstraintViolationException);
    expect((results[2] as PromiseRejectedResult).reason.message).toMatch(/division by zero/);
    expect([await noteOf(46), await noteOf(47), await noteOf(48)]).toEqual(['a', undefined, 'd']);
    expect(await noteOf(40)).toBe('a');
  });

  it('runs two transactions of one group asked in the same turn one after the other, in order', async () => {
    const seenBySecond: unknown[][] = [];
    const [first, second] = await Promise.all([
      member('same', 49),
      sql.transaction(
        async (tx, [rows, seen]) => {
          seenBySecond.push(seen!);
          return (rows![0] as { tx: string }).tx;
        },
        [txid, { text: select, params: [[49]] }],
        { group: 'same' },
      ),
    ]);
    expect(first).not.toBe(second);
    expect(seenBySecond).toEqual([[{ id: 49, note: 'same' }]]);
  });

  it('keeps a retried member\'s key until it ends: a later transaction of that key starts after it', async () => {
    // Two connections, so that only the key, not the pool, can hold the later transaction back.
    const orm2 = await MikroORM.init(ormOptions({ databaseUrl: inject('databaseUrl') }, { pool: { min: 2, max: 2 } }));
    const sql2 = createSqlPool(orm2);
    try {
      let runs = 0;
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      const retried = sql2.transaction(
        async (tx) => {
          // run once in the batch (rolled back because of the other member), then again alone
          if (++runs === 2) await gate;
          tx.atCommit([{ text: insert, params: [52, 'retried'] }]);
        },
        [],
        { group: 'k' },
      );
      const failing = sql2.transaction(
        async () => {
          throw new Error('refused');
        },
        [],
        { group: 'other' },
      );
      await expect(failing).rejects.toThrow('refused');
      const later = sql2.transaction(async (tx, [seen]) => seen, [{ text: select, params: [[52]] }], { group: 'k' });
      await new Promise((r) => setTimeout(r, 50));
      open();
      await retried;
      expect(await later).toEqual([{ id: 52, note: 'retried' }]);
      expect(runs).toBe(2);
    } finally {
      await orm2.close(true);
    }
  });

  it('while changes keep coming, commits those of consecutive loop turns together; idle, one goes at the end of its turn', async () => {
    await member('warm', 53); // a batch has just gone out: the next one waits for the window
    const first = member('a', 54);
    await new Promise((r) => setImmediate(r));
    const second = member('b', 55); // asked in a later loop turn
    const [tx1, tx2] = await Promise.all([first, second]);
    expect(tx1).toBe(tx2);

    await new Promise((r) => setTimeout(r, 150)); // idle again
    const alone = member('c', 56);
    await new Promise((r) => setImmediate(r));
    const next = member('d', 57);
    expect(await alone).not.toBe(await next);
  });
});
