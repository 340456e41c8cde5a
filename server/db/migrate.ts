/** `npm run migrate` and the Procfile's release phase: creates the database if needed and applies migrations. */
import { ConfigError, loadConfig } from '../config.js';
import { createOrm, ensureDatabase, migrate } from './orm.js';

try {
  const config = loadConfig();
  await ensureDatabase(config.databaseUrl);
  const orm = await createOrm(config);
  try {
    const applied = await migrate(orm);
    process.stdout.write(`${JSON.stringify({ level: 'info', msg: 'migrations applied', migrations: applied })}\n`);
  } finally {
    await orm.close(true);
  }
} catch (err) {
  process.stderr.write(err instanceof ConfigError ? `Sam cannot migrate. ${err.message}\n` : `Migration failed: ${(err as Error).message}\n`);
  process.exit(1);
}
