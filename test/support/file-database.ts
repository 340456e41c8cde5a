/**
 * Setup of every test file (vitest `setupFiles`): the file's own database, a
 * copy of the run's migrated template (`test/global-setup.ts`), named in
 * `SAM_TEST_DATABASE_URL` for `testDatabaseUrl()`. Dropped with the run.
 */
import { inject } from 'vitest';
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';

const template = new URL(inject('templateDatabaseUrl'));
const name = `${inject('databasePrefix')}_${randomUUID().slice(0, 8)}`;
const admin = postgres(inject('adminDatabaseUrl'), { max: 1, onnotice: () => undefined });
try {
  // A copy waits for a concurrent copy of the same template to finish; retried in case PostgreSQL refuses instead.
  for (let attempt = 1; ; attempt++) {
    try {
      await admin.unsafe(`create database "${name}" template "${template.pathname.slice(1)}"`);
      break;
    } catch (err) {
      if (attempt >= 20 || !/being accessed by other users/.test((err as Error).message)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
  }
} finally {
  await admin.end();
}
const url = new URL(template);
url.pathname = `/${name}`;
process.env.SAM_TEST_DATABASE_URL = url.toString();
