/**
 * Configuration for the MikroORM CLI (`npx mikro-orm <command>`), the same
 * options the server uses, read from the same validated config.
 * Migrations are written with `npx tsx scripts/gen-migration.ts <Name>` and
 * applied with `npm run migrate` (or at startup outside production).
 */
import { defineConfig } from '@mikro-orm/postgresql';
import { loadConfig } from './server/config.js';
import { ormOptions } from './server/db/orm.js';

export default defineConfig(ormOptions(loadConfig()));
