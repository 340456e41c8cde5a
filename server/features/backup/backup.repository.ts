/**
 * The statements of backups and restores (`backup.ts`): the server's version,
 * a snapshot exported for `pg_dump` and read in the same transaction, the
 * database's contents for the checks before and after a restore.
 */
import type { Sql } from '../../db/postgres.js';
import type postgres from 'postgres';

/** The table of applied migrations (`server/db/orm.ts`, `migrations.tableName`). */
const MIGRATIONS_TABLE = 'public.mikro_orm_migrations';

/** Rows per table, keyed `schema.table`, in name order. */
export type TableRows = Record<string, number>;

export interface DatabaseContents {
  tables: TableRows;
  /** the latest applied migration, or null when the database has none (not a Sam database) */
  schemaVersion: string | null;
}

export type BackupRepository = ReturnType<typeof createBackupRepository>;

export function createBackupRepository(sql: Sql) {
  /** Every ordinary table outside the system schemas with its exact row count, all on `tx`'s snapshot. */
  async function tableRows(tx: postgres.TransactionSql): Promise<TableRows> {
    // One statement counts every table: query_to_xml runs the count of each, inside this transaction.
    const rows = await tx<{ name: string; rows: string }[]>`
      select n.nspname || '.' || c.relname as name,
             (xpath('/row/n/text()', query_to_xml(format('select count(*) as n from %I.%I', n.nspname, c.relname), false, true, '')))[1]::text as rows
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where c.relkind = 'r' and n.nspname <> 'information_schema' and n.nspname not like 'pg\\_%'
       order by 1`;
    return Object.fromEntries(rows.map((r) => [r.name, Number(r.rows)]));
  }

  async function schemaVersion(tx: postgres.TransactionSql): Promise<string | null> {
    const [table] = await tx<{ exists: boolean }[]>`select to_regclass(${MIGRATIONS_TABLE}) is not null as exists`;
    if (!table?.exists) return null;
    const [latest] = await tx<{ name: string }[]>`select name from public.mikro_orm_migrations order by id desc limit 1`;
    return latest?.name ?? null;
  }

  const readOnlySnapshot = 'isolation level repeatable read read only';

  return {
    /** The server's version: `15.20` and 150020 (`server_version_num`). */
    async serverVersion(): Promise<{ version: string; number: number }> {
      const [row] = await sql<{ version: string; number: number }[]>`
        select current_setting('server_version') as version, current_setting('server_version_num')::int as number`;
      return row!;
    },

    /**
     * Runs `work` while a REPEATABLE READ transaction holds a snapshot exported for `pg_dump --snapshot`;
     * the contents given to `work` are read on that same snapshot, so they describe exactly what the dump
     * holds. The transaction stays open until `work` settles (a snapshot can be imported only meanwhile).
     */
    withExportedSnapshot<R>(work: (snapshot: { id: string; at: Date; contents: () => Promise<DatabaseContents> }) => Promise<R>): Promise<R> {
      return sql.begin(readOnlySnapshot, async (tx) => {
        const [row] = await tx<{ id: string; at: Date }[]>`select pg_export_snapshot() as id, now() as at`;
        const contents = async () => ({ tables: await tableRows(tx), schemaVersion: await schemaVersion(tx) });
        return work({ id: row!.id, at: row!.at, contents });
      }) as Promise<R>;
    },

    /** The tables, their rows and the schema version, read on one snapshot. */
    contents(): Promise<DatabaseContents> {
      return sql.begin(readOnlySnapshot, async (tx) => ({ tables: await tableRows(tx), schemaVersion: await schemaVersion(tx) })) as Promise<DatabaseContents>;
    },

    /** Empties the database for a forced restore: schema `public` dropped with everything in it, and made anew. */
    async resetPublicSchema(): Promise<void> {
      await sql.begin(async (tx) => {
        await tx`drop schema if exists public cascade`;
        await tx`create schema public`;
      });
    },

    /** Gathers the planner's statistics, which a restore does not bring. */
    async analyze(): Promise<void> {
      await sql`analyze`;
    },
  };
}
