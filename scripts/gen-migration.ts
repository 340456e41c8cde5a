/**
 * Developer tool: writes a migration for the difference between the entities and
 * the migrations so far. Usage: npx tsx scripts/gen-migration.ts <Name>
 * It uses a scratch database that it creates and drops.
 */
import { MikroORM } from '@mikro-orm/postgresql';
import { ensureDatabase, ormOptions } from '../server/db/orm.js';

const name = process.argv[2];
const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/sam';
const url = new URL(base);
url.pathname = `/sam_migration_scratch_${process.pid}`;
await ensureDatabase(url.toString());
const orm = await MikroORM.init(ormOptions({ databaseUrl: url.toString() }));
try {
  await orm.getMigrator().up();
  const result = await orm.getMigrator().createMigration('server/db/migrations', false, false, name);
  console.log(result.fileName || 'no changes', '\n', result.diff.up.join('\n'));
} finally {
  await orm.close(true);
  const adminUrl = new URL(base);
  adminUrl.pathname = '/postgres';
  const admin = await MikroORM.init({ clientUrl: adminUrl.toString(), entities: [], discovery: { warnWhenNoEntities: false } });
  await admin.em.getConnection().execute(`drop database if exists "${url.pathname.slice(1)}"`);
  await admin.close(true);
}
