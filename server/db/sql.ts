/**
 * Plain SQL on the ORM's own connection pool, for the hot paths: tasks, chat
 * and the connect path. There, knex's query building and MikroORM's transaction
 * wrapper cost more CPU than the statements themselves (a task update: 1.62 ms
 * of CPU through `em.transactional` + `em.execute`, 0.68 ms as plain queries on
 * the same connection, 0.35–0.40 ms pipelined; `npm run bench:micro`). Same
 * pool, same type parsers, same error classes (`DriverException` and its
 * subclasses) as the ORM. One pool per ORM: `Deps.sql`.
 *
 * On this kind of machine each write to a peer costs ~100 µs of CPU (a syscall
 * that wakes the peer), more than the statement itself; so a transaction sends
 * its BEGIN together with its first statements, and its COMMIT together with
 * its last ones, each group in one write (`pipeline`); and transactions that
 * allow it commit together when they arrive in the same event-loop turn
 * (group commit: `TransactionOptions.group`).
 *
 * Placeholders are PostgreSQL's own: `$1`, `$2`, …. Statements are prepared
 * once per connection (named after a hash of their text), so PostgreSQL parses
 * and plans each only once per connection; name columns instead of `*`, so that
 * a prepared plan never changes result type when a migration adds a column.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { MikroORM } from '@mikro-orm/postgresql';
import { flushScheduler } from '../batch.js';

export interface Statement {
  text: string;
  params?: readonly unknown[];
}

export interface Sql {
  query<T>(text: string, params?: readonly unknown[]): Promise<T[]>;
}

export interface Transaction extends Sql {
  /** Queues statements to run with the COMMIT, in the same round trip, in order. */
  atCommit(statements: readonly Statement[]): void;
}

export interface TransactionOptions {
  /**
   * Lets this transaction commit together with others started in the same
   * event-loop turn (group commit; see `createSqlPool`). The key names what its
   * `first` statements lock (a user's row): transactions of one key never share
   * a batch, run in the order they were asked for, and a batch takes its locks
   * in key order. `work` may then run more than once, so it must not have
   * effects outside the transaction.
   */
  group?: string;
}

export interface SqlPool extends Sql {
  /**
   * Runs `work` in one transaction (READ COMMITTED) on one connection: commits
   * when it resolves, rolls back when it throws, and rethrows. `first` are sent
   * with the BEGIN in one round trip; `work` receives their rows, in order.
   */
  transaction<R>(work: (tx: Transaction, first: unknown[][]) => Promise<R>, first?: readonly Statement[], options?: TransactionOptions): Promise<R>;
  /**
   * Runs read-only statements on one snapshot (REPEATABLE READ), all in one
   * round trip with their BEGIN and COMMIT; returns their rows, in order.
   */
  snapshot(statements: readonly Statement[]): Promise<unknown[][]>;
}

// node-postgres, as knex's pool hands it out; only what this module uses.
interface PgResult {
  rows: unknown[];
}
interface PgConnection {
  parsedStatements: Record<string, string>;
  on(event: 'parseComplete', listener: () => void): unknown;
  off(event: 'parseComplete', listener: () => void): unknown;
  stream: { cork?(): void; uncork?(): void };
  parse(message: { text: string; name: string }): void;
  bind(message: { portal: string; statement: string; values: readonly unknown[]; valueMapper: (value: unknown) => unknown }): void;
  describe(message: { type: 'P'; name: string }): void;
  execute(message: { portal: string }): void;
  sync(): void;
}
interface PgQuery {
  requiresPreparation(): boolean;
  prepare(connection: PgConnection): void;
  handleError(err: unknown, connection: PgConnection): void;
  handleReadyForQuery(connection: PgConnection): void;
}
type PgQueryClass = new (config: { text: string }, values: undefined, callback: (err: Error | null, results?: PgResult | PgResult[]) => void) => PgQuery;
interface PgClient {
  query(query: string | { name?: string; text: string; values?: readonly unknown[] }): Promise<PgResult>;
  query(submittable: PgQuery): unknown;
  /** set by knex when the connection failed; the pool then drops it */
  __knex__disposed?: unknown;
}
interface KnexClient {
  acquireConnection(): Promise<PgClient>;
  releaseConnection(connection: PgClient): Promise<void>;
}

// The same module instance knex uses (one copy in node_modules).
const pg = createRequire(import.meta.url)('pg') as { Query: PgQueryClass; utils: { prepareValue(value: unknown): unknown } };

type Work<R> = (tx: Transaction, first: unknown[][]) => Promise<R>;

/** A transaction waiting for its group commit (see `createSqlPool`). */
interface Member {
  group: string;
  first: readonly Statement[];
  work: Work<unknown>;
  resolve(value: unknown): void;
  reject(reason: unknown): void;
}

/** Members of one group commit at most. */
const MAX_BATCH = 32;

/**
 * While changes keep coming, a change alone at the end of its loop turn waits
 * this long for others (see `flushScheduler`): at 1,000 changes a second one
 * loop turn holds about one, and a batch of one saves nothing. 6 ms rather
 * than 2: in four back-to-back pairs of bench runs at 1,000 changes/s the
 * server's CPU per change fell from 0.77–0.88 to 0.60–0.78 ms and
 * PostgreSQL's from 0.21–0.24 to 0.15–0.20 ms, with the p99 no worse; the p50
 * of a change under load rises by 3–4 ms (bench/README.md, "Fifth pass").
 */
const groupWindowMs = 6;

/** Distinct statement texts prepared at most; beyond that, statements run unnamed. */
const MAX_PREPARED = 500;
const statementNames = new Map<string, string>();

function statementName(text: string): string | undefined {
  let name = statementNames.get(text);
  if (name === undefined && statementNames.size < MAX_PREPARED) {
    name = `sam_${createHash('sha1').update(text).digest('base64url').slice(0, 16)}`;
    statementNames.set(text, name);
  }
  return name;
}

/**
 * Several statements in one write, answered after one Sync: Parse (once per
 * connection), Bind, Describe and Execute for each. The server stops at the
 * first error and skips the rest. Results come back one per statement.
 */
class Pipeline extends pg.Query {
  /** statements sent with a Parse, in order, until their ParseComplete arrives */
  private readonly parsing: { name: string; text: string }[] = [];
  private detach: (() => void) | undefined;

  constructor(
    private readonly statements: readonly Statement[],
    callback: (err: Error | null, results?: PgResult | PgResult[]) => void,
  ) {
    super({ text: '' }, undefined, callback);
  }

  override requiresPreparation(): boolean {
    return true;
  }

  override prepare(connection: PgConnection): void {
    // A statement counts as prepared on this connection once PostgreSQL said so (ParseComplete),
    // so that a pipeline cut short by an error leaves the client's record exact.
    const onParsed = () => {
      const parsed = this.parsing.shift();
      if (parsed) connection.parsedStatements[parsed.name] = parsed.text;
    };
    connection.on('parseComplete', onParsed);
    this.detach = () => connection.off('parseComplete', onParsed);
    try {
      const parsingNow = new Set<string>();
      for (const { text, params = [] } of this.statements) {
        const name = statementName(text) ?? '';
        if (!name || (connection.parsedStatements[name] !== text && !parsingNow.has(name))) {
          connection.parse({ text, name });
          if (name) {
            parsingNow.add(name);
            this.parsing.push({ name, text });
          }
        }
        connection.bind({ portal: '', statement: name, values: params, valueMapper: pg.utils.prepareValue });
        connection.describe({ type: 'P', name: '' });
        connection.execute({ portal: '' });
      }
      connection.sync();
    } catch (err) {
      // A value that cannot be sent: fail the pipeline, and still end what was sent with a Sync
      // so that the connection gets its ReadyForQuery (the caller rolls back).
      this.handleError(err, connection);
      connection.sync();
    }
  }

  override handleError(err: unknown, connection: PgConnection): void {
    this.detach?.();
    super.handleError(err, connection);
  }

  override handleReadyForQuery(connection: PgConnection): void {
    this.detach?.();
    super.handleReadyForQuery(connection);
  }
}

function pipeline(connection: PgClient, statements: readonly Statement[]): Promise<unknown[][]> {
  return new Promise((resolve, reject) => {
    connection.query(
      new Pipeline(statements, (err, results) => {
        if (err) {
          reject(err);
          return;
        }
        const list = Array.isArray(results) ? results : results ? [results] : [];
        resolve(list.map((r) => r.rows));
      }),
    );
  });
}

export function createSqlPool(orm: MikroORM): SqlPool {
  const knex = () => orm.em.getConnection().getKnex().client as unknown as KnexClient;
  const convert = (err: unknown) => orm.em.getDriver().convertException(err as Error);

  async function withConnection<R>(work: (connection: PgClient) => Promise<R>): Promise<R> {
    const client = knex();
    let connection: PgClient;
    try {
      connection = await client.acquireConnection();
    } catch (err) {
      throw convert(err);
    }
    try {
      return await work(connection);
    } finally {
      await client.releaseConnection(connection);
    }
  }

  const run = async <T>(connection: PgClient, text: string, params?: readonly unknown[]): Promise<T[]> => {
    try {
      const query = params && params.length > 0 ? { name: statementName(text), text, values: params } : text;
      return (await connection.query(query)).rows as T[];
    } catch (err) {
      throw convert(err);
    }
  };

  const runPipeline = async (connection: PgClient, statements: readonly Statement[]) => {
    try {
      return await pipeline(connection, statements);
    } catch (err) {
      throw convert(err);
    }
  };

  /** Rolls back after a failure; a connection that cannot roll back is not given to anyone else. */
  const rollback = async (connection: PgClient) => {
    try {
      await connection.query('rollback');
    } catch (rollbackErr) {
      connection.__knex__disposed = rollbackErr;
    }
  };

  const transactionAlone = <R>(work: Work<R>, first: readonly Statement[]): Promise<R> =>
    withConnection(async (connection) => {
      const atCommit: Statement[] = [];
      let result;
      try {
        const firstRows = (await runPipeline(connection, [{ text: 'begin' }, ...first])).slice(1);
        result = await work(
          {
            query: (text, params) => run(connection, text, params),
            atCommit: (statements) => void atCommit.push(...statements),
          },
          firstRows,
        );
        await runPipeline(connection, [...atCommit, { text: 'commit' }]);
      } catch (err) {
        await rollback(connection);
        throw err;
      }
      return result;
    });

  /**
   * Group commit. Transactions that ask for it (`options.group`) and arrive in
   * the same event-loop turn share one transaction: one round trip for every
   * BEGIN and first statements, each member's `work` on the same connection,
   * one round trip for every member's COMMIT statements. Under load this is
   * where the cost of a change goes (the writes to PostgreSQL, its commit),
   * and after a stall the queued changes go out together instead of one by one.
   * A batch commits only when every member succeeded. Otherwise it rolls back;
   * a member whose `work` threw gets its error (it ran against the same rows
   * it would have read alone: members hold different keys), and the others
   * run again, each alone. A PostgreSQL error in a batch sends every member
   * to run again alone, so that the error reaches only the member that causes it.
   */
  let queue: Member[] = [];
  const inBatch = new Set<string>();
  const scheduler = flushScheduler(flush, () => queue.length, { windowMs: groupWindowMs, maxBatch: MAX_BATCH });

  function flush() {
    const batch: Member[] = [];
    const waiting: Member[] = [];
    for (const member of queue) {
      // one member per key, in arrival order; a key already in a batch waits for it to end
      if (batch.length < MAX_BATCH && !inBatch.has(member.group)) {
        inBatch.add(member.group);
        batch.push(member);
      } else {
        waiting.push(member);
      }
    }
    queue = waiting;
    if (batch.length === 0) return;
    scheduler.flushing();
    const done = () => {
      for (const member of batch) inBatch.delete(member.group);
      if (queue.length > 0) scheduler.schedule();
    };
    // Alone, a member takes the plain path: a PostgreSQL error then needs no second attempt.
    void (batch.length === 1 ? runAlone(batch[0]!) : runBatch(batch)).finally(done);
  }

  /** Runs a member as a transaction of its own and settles it. */
  const runAlone = (member: Member): Promise<void> => transactionAlone(member.work, member.first).then(member.resolve, member.reject);

  async function runBatch(batch: Member[]): Promise<void> {
    // Locks are taken in key order, so that two batches (here or on another node) cannot deadlock.
    batch.sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
    let retry: Member[];
    try {
      retry = await withConnection((connection) => runBatchOn(connection, batch));
    } catch (err) {
      for (const member of batch) member.reject(err);
      return;
    }
    // The retried members keep their keys until they end, so that a later transaction of the same key
    // cannot overtake them.
    await Promise.all(retry.map(runAlone));
  }

  /**
   * Runs a batch on one connection and settles what it can; returns the
   * members to run again alone (all of them after a PostgreSQL error).
   */
  async function runBatchOn(connection: PgClient, batch: Member[]): Promise<Member[]> {
    let settled: PromiseSettledResult<unknown>[];
    try {
      const firstRows = (await runPipeline(connection, [{ text: 'begin' }, ...batch.flatMap((m) => m.first)])).slice(1);
      let failedInPostgres: unknown;
      const atCommit = batch.map((): Statement[] => []);
      let offset = 0;
      settled = await Promise.allSettled(
        batch.map((member, i) =>
          member.work(
            {
              query: <T>(text: string, params?: readonly unknown[]) =>
                run<T>(connection, text, params).catch((err: unknown) => {
                  failedInPostgres ??= err;
                  throw err;
                }),
              atCommit: (statements) => void atCommit[i]!.push(...statements),
            },
            firstRows.slice(offset, (offset += member.first.length)),
          ),
        ),
      );
      if (failedInPostgres !== undefined) throw failedInPostgres;
      if (settled.every((s) => s.status === 'fulfilled')) {
        await runPipeline(connection, [...atCommit.flat(), { text: 'commit' }]);
        settled.forEach((s, i) => batch[i]!.resolve((s as PromiseFulfilledResult<unknown>).value));
        return [];
      }
    } catch {
      await rollback(connection);
      return batch;
    }
    // A member's own error (not PostgreSQL's): it gets it, the others run again alone.
    await rollback(connection);
    const retry: Member[] = [];
    settled.forEach((s, i) => (s.status === 'rejected' ? batch[i]!.reject(s.reason) : retry.push(batch[i]!)));
    return retry;
  }

  return {
    query: (text, params) => withConnection((connection) => run(connection, text, params)),
    transaction: <R>(work: Work<R>, first: readonly Statement[] = [], options: TransactionOptions = {}) => {
      const { group } = options;
      if (group === undefined) return transactionAlone(work, first);
      return new Promise<R>((resolve, reject) => {
        queue.push({ group, first, work, resolve: resolve as (value: unknown) => void, reject });
        scheduler.schedule();
      });
    },
    snapshot: (statements) =>
      withConnection(async (connection) => {
        try {
          const rows = await runPipeline(connection, [{ text: 'begin isolation level repeatable read read only' }, ...statements, { text: 'commit' }]);
          return rows.slice(1, -1);
        } catch (err) {
          await rollback(connection);
          throw err;
        }
      }),
  };
}
