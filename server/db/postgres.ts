/**
 * The PostgreSQL client of the repositories: `postgres` (postgres.js), used
 * only through its documented API, on a small pool of its own beside
 * MikroORM's. It prepares each statement once per connection and pipelines:
 * queries issued in the same turn of the event loop, by any caller, leave in
 * one write and share a connection's round trip. On this kind of machine a
 * round trip costs more CPU than the statements it carries (bench/README.md,
 * "Round trips cost more than statements"), so the repositories are written
 * to need few of them: a change is one read and one write.
 *
 * Rows come back with camelCase keys (`task_seq` → `taskSeq`); calendar dates
 * (`date` columns) stay `YYYY-MM-DD` strings; `jsonb` is parsed.
 */
import postgres from 'postgres';

export type Sql = postgres.Sql;
export type ReservedSql = postgres.ReservedSql;
/** The pool or a reserved connection: what a statement built on either takes. */
export type ISql = postgres.ISql;
/** A statement of any row shape, built and not yet sent. */
export type PendingStatement = postgres.PendingQuery<any>;
export { postgres };

export interface PostgresOptions {
  /** connections at most (default 8) */
  max?: number;
  /** a statement running longer is cancelled (ms, default 15 s) */
  statementTimeoutMs?: number;
  applicationName?: string;
}

export function createPostgres(databaseUrl: string, options: PostgresOptions = {}): Sql {
  return postgres(databaseUrl, {
    max: options.max ?? 8,
    // Idle connections are kept a minute: opening one costs PostgreSQL a backend with cold caches.
    idle_timeout: 60,
    connect_timeout: 3,
    // While PostgreSQL is away, the pool refuses queries at once with the last connection error until its next
    // attempt, and the default backoff grows to 20 s: attempts a tenth of a second apart let work through as
    // soon as PostgreSQL is back.
    backoff: 0.1,
    prepare: true,
    transform: { column: { from: postgres.toCamel } },
    types: {
      // A `date` is a calendar date (a deadline in the user's calendar), not an instant.
      calendarDate: { to: 1082, from: [1082], serialize: (x: string) => x, parse: (x: string) => x },
    },
    connection: { statement_timeout: options.statementTimeoutMs ?? 15_000, application_name: options.applicationName ?? 'sam', plan_cache_mode: 'force_generic_plan' },
    onnotice: () => undefined,
  });
}

/** Resolves when PostgreSQL answers on this pool. */
export async function ping(sql: Sql): Promise<void> {
  await sql`select 1`;
}

/** SQLSTATE of a unique violation. */
export const UNIQUE_VIOLATION = '23505';

/** True when `err` is PostgreSQL's refusal of a duplicate key. */
export function isUniqueViolation(err: unknown): boolean {
  return err instanceof postgres.PostgresError && err.code === UNIQUE_VIOLATION;
}

/** A transaction whose writes are sent together with its COMMIT. */
export interface Transaction {
  /** the reserved connection, inside the transaction */
  sql: ReservedSql;
  /** Queues statements to go out with the COMMIT, in the same round trip, in order. */
  atCommit(...queries: PendingStatement[]): void;
}

/**
 * Runs `work` in one READ COMMITTED transaction on a reserved connection, in
 * as few round trips as it allows: BEGIN leaves with the first statements
 * `work` issues, and the statements given to `atCommit` leave with the
 * COMMIT. Commits when `work` resolves, rolls back when it or a statement
 * fails, and rethrows.
 */
export async function transaction<R>(sql: Sql, work: (tx: Transaction) => Promise<R>): Promise<R> {
  const conn = await sql.reserve();
  const atCommit: PendingStatement[] = [];
  let open = false;
  try {
    const begin = conn`begin`.execute();
    open = true;
    const [result] = await Promise.all([work({ sql: conn, atCommit: (...queries) => void atCommit.push(...queries) }), begin]);
    // A failed statement turns the COMMIT into a rollback: every outcome is awaited, the first failure rethrown.
    const outcomes = await Promise.allSettled([...atCommit.map((q) => q.execute()), conn`commit`.execute()]);
    open = false;
    const failed = outcomes.find((o) => o.status === 'rejected');
    if (failed) throw failed.reason;
    return result;
  } catch (err) {
    if (open) await conn`rollback`.catch(() => undefined);
    throw err;
  } finally {
    conn.release();
  }
}

/**
 * Runs read-only statements on one snapshot (REPEATABLE READ), all in one
 * round trip with their BEGIN and COMMIT; returns their rows, in order.
 */
export async function snapshot<const Q extends readonly PendingStatement[]>(
  sql: Sql,
  queries: (sql: ReservedSql) => Q,
): Promise<{ [K in keyof Q]: Awaited<Q[K]> }> {
  const conn = await sql.reserve();
  try {
    const all = await Promise.allSettled([conn`begin isolation level repeatable read read only`.execute(), ...queries(conn).map((q) => q.execute()), conn`commit`.execute()]);
    const failed = all.find((o) => o.status === 'rejected');
    if (failed) {
      await conn`rollback`.catch(() => undefined);
      throw failed.reason;
    }
    return all.slice(1, -1).map((o) => (o as PromiseFulfilledResult<unknown>).value) as { [K in keyof Q]: Awaited<Q[K]> };
  } finally {
    conn.release();
  }
}
