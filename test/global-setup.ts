/**
 * One fresh PostgreSQL database per test run, migrated with the real
 * migrations, dropped at the end. Tests make their own users and data, so
 * files can run in parallel; Redis keys carry per-app prefixes.
 */
import type { TestProject } from 'vitest/node';
import { MikroORM } from '@mikro-orm/postgresql';
import { migratedDatabase } from './support/postgres-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    redisUrl: string;
  }
}

const adminUrl = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export default async function setup(project: TestProject) {
  const url = new URL(adminUrl);
  const dbName = `sam_test_${Date.now()}_${process.pid}`;
  url.pathname = `/${dbName}`;
  const databaseUrl = url.toString();
  await migratedDatabase(databaseUrl);
  project.provide('databaseUrl', databaseUrl);
  project.provide('redisUrl', process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');

  return async () => {
    const admin = await MikroORM.init({ clientUrl: adminUrl, entities: [], discovery: { warnWhenNoEntities: false } });
    try {
      await admin.em.getConnection().execute(`drop database if exists "${dbName}" with (force)`);
    } finally {
      await admin.close(true);
    }
  };
}
