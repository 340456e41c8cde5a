/**
 * Plain SQL on the ORM's own connection pool, for the hot paths: task changes
 * and the connect path. There, knex's query building and MikroORM's transaction
 * wrapper cost more CPU than the statements themselves (measured in
 * `npm run bench`: the five statements of a task update took 1.5 ms of CPU
 * through `em.transactional` + `em.execute`, 0.45 ms as plain queries on the
 * same connection). Same pool, same type parsers, same error classes
 * (`DriverException` and its subclasses) as the ORM.
 *
 * Placeholders are PostgreSQL's own: `$1`, `$2`, …. Statements with
 * parameters are prepared once per connection (named after a hash of their
 * text), so PostgreSQL parses and plans each only once per connection; name
 * columns instead of `*`, so that a prepared plan never changes result type
 * when a migration adds a column.
 */
import { createHash } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';

export interface Sql {
  query<T>(text: string, params?: readonly unknown[]): Promise<T[]>;
}

export interface SqlPool extends Sql {
  /**
   * Runs `work` in one transaction (READ COMMITTED) on one connection: commits
   * when it resolves, rolls back when it throws, and rethrows.
   */
  transaction<R>(work: (sql: Sql) => Promise<R>): Promise<R>;
}

/** What knex's pool hands out: a node-postgres client. */
interface PgClient {
  query(query: string | { name?: string; text: string; values?: readonly unknown[] }): Promise<{ rows: unknown[] }>;
  /** set by knex when the connection failed; the pool then drops it */
  __knex__disposed?: unknown;
}

interface KnexClient {
  acquireConnection(): Promise<PgClient>;
  releaseConnection(connection: PgClient): Promise<void>;
}

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

  return {
    query: (text, params) => withConnection((connection) => run(connection, text, params)),
    transaction: (work) =>
      withConnection(async (connection) => {
        await run(connection, 'begin');
        let result;
        try {
          result = await work({ query: (text, params) => run(connection, text, params) });
        } catch (err) {
          try {
            await connection.query('rollback');
          } catch (rollbackErr) {
            // A connection that cannot roll back is not given to anyone else.
            connection.__knex__disposed = rollbackErr;
          }
          throw err;
        }
        await run(connection, 'commit');
        return result;
      }),
  };
}
