/**
 * One PostgreSQL database per test run, migrated with the real migrations:
 * the template every test file's own database is copied from
 * (`support/file-database.ts`), so that one file's nodes never see another
 * file's data. That matters for background work that reads every user's rows
 * (the reminders' claim loop, the purge): a node of one file would otherwise
 * fire another file's reminders into its own Redis prefix, where that file's
 * tabs never hear them. Every database of the run is dropped at the end.
 */
import type { TestProject } from 'vitest/node';
import { MikroORM } from '@mikro-orm/postgresql';
import { migratedDatabase } from './support/postgres-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** the migrated template (never connected to by tests: a copy needs it idle) */
    templateDatabaseUrl: string;
    /** the prefix of this run's databases */
    databasePrefix: string;
    adminDatabaseUrl: string;
    redisUrl: string;
  }
}

const adminUrl = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export default async function setup(project: TestProject) {
  const prefix = `sam_test_${Date.now()}_${process.pid}`;
  const url = new URL(adminUrl);
  url.pathname = `/${prefix}_template`;
  await migratedDatabase(url.toString());
  project.provide('templateDatabaseUrl', url.toString());
  project.provide('databasePrefix', prefix);
  project.provide('adminDatabaseUrl', adminUrl);
  project.provide('redisUrl', process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');

  return async () => {
    const admin = await MikroORM.init({ clientUrl: adminUrl, entities: [], discovery: { warnWhenNoEntities: false } });
    try {
      const connection = admin.em.getConnection();
      const rows = await connection.execute<{ datname: string }[]>(`select datname from pg_database where datname like ?`, [`${prefix}%`]);
      for (const { datname } of rows) await connection.execute(`drop database if exists "${datname}" with (force)`);
    } finally {
      await admin.close(true);
    }
  };
}
