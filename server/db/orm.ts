import { MikroORM, type Options } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { entities } from './entities.js';
import { migrationsList } from './migrations/index.js';

export type Orm = MikroORM;

/** ORM options shared by the server, the migration script and the CLI config. */
export function ormOptions(config: Pick<Config, 'databaseUrl'>, overrides: Partial<Options> = {}): Options {
  return {
    clientUrl: config.databaseUrl,
    entities,
    extensions: [Migrator],
    // The auth lifecycle's pool (the repositories have their own, server/db/postgres.ts). Settings that
    // survive a PostgreSQL restart: a broken connection is dropped, acquiring waits only briefly. Idle
    // connections stay a minute and one always: opening one costs PostgreSQL a backend and cold caches.
    pool: { min: 1, max: 6, idleTimeoutMillis: 60_000, acquireTimeoutMillis: 5_000 },
    driverOptions: {
      connection: { keepAlive: true, connectionTimeoutMillis: 3_000, statement_timeout: 15_000 },
    },
    migrations: {
      tableName: 'mikro_orm_migrations',
      path: 'dist/server/db/migrations',
      pathTs: 'server/db/migrations',
      transactional: true,
      allOrNothing: true,
      silent: true,
      emit: 'ts',
      snapshot: false,
      migrationsList,
    },
    debug: false,
    allowGlobalContext: false,
    forceUtcTimezone: true,
    ...overrides,
  };
}

export async function createOrm(config: Pick<Config, 'databaseUrl'>, logger?: Logger): Promise<Orm> {
  const options = ormOptions(config);
  if (logger) {
    // The query builder's own warnings (a dropped connection, say) go to our JSON log, not the console.
    const log = (level: 'warn' | 'error') => (message: unknown) => logger[level]({ event: 'db' }, String(message));
    options.driverOptions = { ...options.driverOptions, log: { warn: log('warn'), error: log('error'), deprecate: () => undefined, debug: () => undefined } };
  }
  return MikroORM.init(options);
}

/** Creates the database named in `databaseUrl` when it does not exist yet. */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const dbName = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!dbName) return;
  url.pathname = '/postgres';
  const admin = await MikroORM.init({ clientUrl: url.toString(), entities: [], discovery: { warnWhenNoEntities: false }, pool: { min: 0, max: 1 } });
  try {
    const rows = await admin.em.getConnection().execute('select 1 from pg_database where datname = ?', [dbName]);
    if (rows.length === 0) {
      await admin.em.getConnection().execute(`create database "${dbName.replace(/"/g, '""')}"`);
    }
  } finally {
    await admin.close(true);
  }
}

/** Applies pending migrations; returns the names applied. */
export async function migrate(orm: Orm): Promise<string[]> {
  const applied = await orm.getMigrator().up();
  return applied.map((m) => m.name);
}
