/**
 * Backups and restores of Sam's PostgreSQL database (the operators' command
 * line, `server/cli.ts`). PostgreSQL is all a restore needs: Redis holds only
 * what the nodes rebuild from it (the revocation blacklist, `revocation.ts`)
 * or what may be lost (rate-limit counters, stream buffers of running answers).
 *
 * A backup is two files: `<file>`, the dump (`pg_dump --format=custom`), and
 * `<file>.manifest.json` beside it, which says what the dump holds: when it was
 * taken, the schema version (the latest applied migration), the rows of every
 * table and the dump's SHA-256. The rows are counted in the transaction whose
 * snapshot `pg_dump` dumps, so they are exactly the dump's. A backup exists
 * once its manifest does: the dump is written under another name first.
 *
 * A restore checks the dump against its manifest before it touches anything,
 * restores in one transaction (all or nothing), and compares the restored
 * tables and schema version with the manifest.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { createPostgres, type Sql } from '../../db/postgres.js';
import { ensureDatabase } from '../../db/orm.js';
import { migrationsList } from '../../db/migrations/index.js';
import type { CommandOutput } from '../auth/admins.js';
import { createBackupRepository, type BackupRepository, type DatabaseContents } from './backup.repository.js';
import { failureLine, findPgTool, libpqConnection, run } from './pg-tools.js';

export const backupUsage = [
  'usage: npm run backup -- --out <file>     (in a deployment: node dist/server/cli.js backup --out <file>)',
  '       npm run restore -- <file> [--force] (in a deployment: node dist/server/cli.js restore <file> [--force])',
  '  backup   dumps DATABASE_URL to <file> and writes <file>.manifest.json beside it',
  '  restore  restores <file> into the database DATABASE_URL names (created if missing), which must hold no data;',
  '           --force empties it first (schema public dropped with everything in it)',
].join('\n');

const manifestSchema = z.object({
  format: z.literal('sam-backup'),
  formatVersion: z.literal(1),
  /** when the dump's snapshot was taken (ISO 8601) */
  createdAt: z.string(),
  /** the database's name (no host or credentials) */
  database: z.string(),
  server: z.object({ version: z.string(), major: z.int() }),
  pgDump: z.object({ version: z.string() }),
  /** the latest applied migration */
  schemaVersion: z.string(),
  /** rows per table, `schema.table` */
  tables: z.record(z.string(), z.int().min(0)),
  totalRows: z.int().min(0),
  dump: z.object({ file: z.string(), bytes: z.int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
});
export type BackupManifest = z.infer<typeof manifestSchema>;

export const manifestPathOf = (dumpFile: string) => `${dumpFile}.manifest.json`;

/** `backup --out <file>`: 0 written, 1 failed, 2 a usage error. */
export async function runBackupCommand(args: readonly string[], deps: { databaseUrl: string; output: CommandOutput }): Promise<number> {
  let out: string | undefined;
  try {
    ({ out } = parseArgs({ args: [...args], options: { out: { type: 'string', short: 'o' } }, strict: true }).values);
  } catch {
    // parseArgs explains in a sentence of its own; the usage says more.
  }
  if (!out) {
    deps.output.err(backupUsage);
    return 2;
  }
  return withDatabase(deps.databaseUrl, deps.output, 'backup', (repo) => backup(repo, deps.databaseUrl, path.resolve(out), deps.output));
}

/** `restore <file> [--force]`: 0 restored and verified, 1 failed or refused, 2 a usage error. */
export async function runRestoreCommand(args: readonly string[], deps: { databaseUrl: string; output: CommandOutput }): Promise<number> {
  let parsed: { file: string | undefined; force: boolean } | undefined;
  try {
    const { values, positionals } = parseArgs({ args: [...args], options: { force: { type: 'boolean' } }, allowPositionals: true, strict: true });
    if (positionals.length === 1) parsed = { file: positionals[0], force: values.force === true };
  } catch {
    // as above
  }
  if (!parsed?.file) {
    deps.output.err(backupUsage);
    return 2;
  }
  const file = path.resolve(parsed.file);
  const force = parsed.force;
  try {
    // Everything that needs no database first: a bad file never costs the target anything.
    const manifest = await readVerifiedBackup(file);
    await ensureDatabase(deps.databaseUrl).catch((err: unknown) => {
      throw new Error(`cannot reach PostgreSQL to create the database: ${(err as Error).message}`);
    });
    return await withDatabase(deps.databaseUrl, deps.output, 'restore', (repo) => restore(repo, deps.databaseUrl, file, manifest, force, deps.output));
  } catch (err) {
    deps.output.err(`restore failed: ${oneLine((err as Error).message)}`);
    return 1;
  }
}

/** Runs `work` with a pool of its own on the database; any failure is one line on stderr and exit 1. */
async function withDatabase(databaseUrl: string, output: CommandOutput, command: string, work: (repo: BackupRepository) => Promise<void>): Promise<number> {
  // No statement timeout: counting the rows of a large table may take a while.
  const sql: Sql = createPostgres(databaseUrl, { max: 2, statementTimeoutMs: 0, applicationName: `sam:${command}` });
  try {
    await work(createBackupRepository(sql));
    return 0;
  } catch (err) {
    output.err(`${command} failed: ${oneLine((err as Error).message)}`);
    return 1;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function backup(repo: BackupRepository, databaseUrl: string, out: string, output: CommandOutput): Promise<void> {
  if (!fs.existsSync(path.dirname(out))) throw new Error(`the directory ${path.dirname(out)} does not exist`);
  const server = await repo.serverVersion();
  const major = Math.floor(server.number / 10_000);
  const pgDump = await findPgTool('pg_dump', major);
  const partial = `${out}.partial`;
  const connection = libpqConnection(databaseUrl);
  try {
    const { at, contents } = await repo.withExportedSnapshot(async (snapshot) => {
      // Both settle before the transaction ends: pg_dump is never left writing after a failed count.
      const [dumped, contents] = await Promise.allSettled([
        run(pgDump.path, ['--format=custom', `--snapshot=${snapshot.id}`, `--file=${partial}`, '--no-password', `--dbname=${connection.dbname}`]),
        snapshot.contents(),
      ]);
      if (dumped.status === 'rejected') throw dumped.reason;
      if (dumped.value.code !== 0) throw new Error(failureLine('pg_dump', dumped.value));
      if (contents.status === 'rejected') throw contents.reason;
      return { at: snapshot.at, contents: contents.value };
    });
    if (contents.schemaVersion === null) throw new Error('the database has no applied migrations (no mikro_orm_migrations rows): it is not a Sam database');
    const { bytes, sha256 } = await digest(partial);
    const manifest: BackupManifest = {
      format: 'sam-backup',
      formatVersion: 1,
      createdAt: at.toISOString(),
      database: decodeURIComponent(new URL(databaseUrl).pathname.slice(1)),
      server: { version: server.version, major },
      pgDump: { version: pgDump.version },
      schemaVersion: contents.schemaVersion,
      tables: contents.tables,
      totalRows: sum(contents),
      dump: { file: path.basename(out), bytes, sha256 },
    };
    // A manifest describes the dump beside it: an older one goes before the dump is replaced.
    fs.rmSync(manifestPathOf(out), { force: true });
    fs.renameSync(partial, out);
    fs.writeFileSync(`${manifestPathOf(out)}.partial`, `${JSON.stringify(manifest, null, 2)}\n`);
    fs.renameSync(`${manifestPathOf(out)}.partial`, manifestPathOf(out));
    output.out(`backup written: ${out} (${bytes} bytes, sha256 ${sha256}) and ${manifestPathOf(out)}; ${describe(manifest)}, snapshot of ${manifest.createdAt}`);
  } finally {
    connection.dispose();
    fs.rmSync(partial, { force: true });
  }
}

/** The manifest beside `file`, once the dump is found to be the one it describes. */
async function readVerifiedBackup(file: string): Promise<BackupManifest> {
  if (!fs.existsSync(file)) throw new Error(`no such file: ${file}`);
  const manifestFile = manifestPathOf(file);
  if (!fs.existsSync(manifestFile)) throw new Error(`no manifest beside the dump (${manifestFile}): not a complete Sam backup`);
  let manifest: BackupManifest;
  try {
    manifest = manifestSchema.parse(JSON.parse(fs.readFileSync(manifestFile, 'utf8')));
  } catch (err) {
    throw new Error(`${manifestFile} is not a Sam backup manifest: ${err instanceof z.ZodError ? z.prettifyError(err) : (err as Error).message}`);
  }
  const { bytes, sha256 } = await digest(file);
  if (sha256 !== manifest.dump.sha256 || bytes !== manifest.dump.bytes) {
    throw new Error(`checksum mismatch: ${file} is not the dump its manifest describes (sha256 ${sha256}, ${bytes} bytes; the manifest says ${manifest.dump.sha256}, ${manifest.dump.bytes} bytes): it is damaged or was replaced`);
  }
  if (!migrationsList.some((m) => m.name === manifest.schemaVersion)) {
    throw new Error(`the backup's schema version ${manifest.schemaVersion} is unknown to this build of Sam: restore it with the version of Sam that took it`);
  }
  return manifest;
}

async function restore(repo: BackupRepository, databaseUrl: string, file: string, manifest: BackupManifest, force: boolean, output: CommandOutput): Promise<void> {
  const server = await repo.serverVersion();
  const major = Math.floor(server.number / 10_000);
  if (major < manifest.server.major) {
    throw new Error(`the backup was taken from PostgreSQL ${manifest.server.version} and this server is ${server.version}: restore into PostgreSQL ${manifest.server.major} or newer`);
  }
  const dumpMajor = Number(manifest.pgDump.version.split('.')[0]);
  const pgRestore = await findPgTool('pg_restore', Math.max(major, dumpMajor));
  const database = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));

  const before = await repo.contents();
  const occupied = Object.entries(before.tables).filter(([name, rows]) => rows > 0 || name in manifest.tables);
  if (occupied.length > 0) {
    if (!force) {
      const rows = occupied.reduce((n, [, r]) => n + r, 0);
      throw new Error(`the database ${database} is not empty (${occupied.length} tables, ${rows} rows${before.schemaVersion ? `, Sam schema ${before.schemaVersion}` : ''}): restore into an empty database, or pass --force to replace its contents`);
    }
    await repo.resetPublicSchema();
  }

  const connection = libpqConnection(databaseUrl);
  try {
    // One transaction: a restore that fails leaves nothing behind. Owners and grants are the target's.
    const restored = await run(pgRestore.path, ['--single-transaction', '--exit-on-error', '--no-owner', '--no-acl', '--no-password', `--dbname=${connection.dbname}`, file]);
    if (restored.code !== 0) throw new Error(failureLine('pg_restore', restored));
  } finally {
    connection.dispose();
  }

  const after = await repo.contents();
  const differences = compare(manifest, after);
  if (differences.length > 0) {
    throw new Error(`the database was restored but differs from the manifest, do not use it: ${differences.slice(0, 3).join('; ')}${differences.length > 3 ? `; and ${differences.length - 3} more` : ''}`);
  }
  await repo.analyze();
  output.out(`restored ${file} into ${database} and verified it: ${describe(manifest)}, as of ${manifest.createdAt}`);
}

/** What differs between the manifest and the restored database (tables the manifest does not name are not the backup's). */
function compare(manifest: BackupManifest, after: DatabaseContents): string[] {
  const differences: string[] = [];
  if (after.schemaVersion !== manifest.schemaVersion) differences.push(`schema version ${after.schemaVersion ?? 'none'}, the backup's ${manifest.schemaVersion}`);
  for (const [name, rows] of Object.entries(manifest.tables)) {
    const restored = after.tables[name];
    if (restored === undefined) differences.push(`${name} is missing`);
    else if (restored !== rows) differences.push(`${name} has ${restored} rows, the backup ${rows}`);
  }
  return differences;
}

async function digest(file: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  await pipeline(fs.createReadStream(file), hash);
  return { bytes: fs.statSync(file).size, sha256: hash.digest('hex') };
}

const sum = (contents: Pick<DatabaseContents, 'tables'>) => Object.values(contents.tables).reduce((n, r) => n + r, 0);
const describe = (m: BackupManifest) => `schema ${m.schemaVersion}, ${Object.keys(m.tables).length} tables, ${m.totalRows} rows`;
const oneLine = (message: string) => message.replace(/\s*\n\s*/g, ' ');
