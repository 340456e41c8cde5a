/**
 * Backups and the restore drill: the built command line (`node
 * dist/server/cli.js backup|restore`, as a deployment runs it) against this
 * file's own database, and a production-mode server on a Redis of the file's
 * own, which the drill flushes. After the database is dropped and restored,
 * nothing the users had is missing and nothing revoked comes back.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import postgres from 'postgres';
import { productionEnv } from './support/env.js';
import { startTestApp, type TestApp } from './support/app.js';
import { startOwnRedis, type OwnRedis } from './support/redis-server.js';
import { runCli } from './support/admin.js';
import { runProcess } from './support/process.js';
import { logIn, signUp } from './support/users.js';
import { connectError, connectReady, tabTracker, type Tab } from './support/sockets.js';
import { sidOf } from './support/until.js';
import { doneOf } from './support/chat-cluster.js';
import { createAnthropicCompatibleServer, type AnthropicCompatibleServer } from '../dev/offline-model/server.js';
import { ErrorCode } from '../shared/errors.js';
import type { BackupManifest } from '../server/features/backup/backup.js';

const repoRoot = path.resolve(import.meta.dirname, '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sam-backup-test-'));
const admin = postgres(inject('adminDatabaseUrl'), { max: 1, onnotice: () => undefined });
/** A database of this run's (dropped with the run) that does not exist yet. */
const scratchDatabaseUrl = () => {
  const url = new URL(inject('adminDatabaseUrl'));
  url.pathname = `/${inject('databasePrefix')}_restore_${randomUUID().slice(0, 8)}`;
  return url.toString();
};
const databaseName = (url: string) => new URL(url).pathname.slice(1);
const databaseExists = async (url: string) => (await admin`select 1 from pg_database where datname = ${databaseName(url)}`).length === 1;
/** The tables of a database, with their rows. */
async function tablesOf(url: string): Promise<Record<string, number>> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    const tables = await sql<{ name: string }[]>`select tablename as name from pg_tables where schemaname = 'public' order by 1`;
    const counts = await Promise.all(tables.map(async ({ name }) => [name, Number((await sql`select count(*)::int as n from ${sql(name)}`)[0]!.n)] as const));
    return Object.fromEntries(counts);
  } finally {
    await sql.end();
  }
}
const sha256Of = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const readManifest = (file: string) => JSON.parse(fs.readFileSync(`${file}.manifest.json`, 'utf8')) as BackupManifest;

let upstream: AnthropicCompatibleServer;
let redis: OwnRedis;
/** The deployment: one secret and Redis prefix across the restart, the database of this file. */
let env: Record<string, string | undefined>;
const tabs = tabTracker();
const apps: TestApp[] = [];

beforeAll(async () => {
  [upstream, redis] = await Promise.all([createAnthropicCompatibleServer({ deltaDelayMs: 0 }), startOwnRedis()]);
  env = productionEnv({ REDIS_URL: redis.url, ANTHROPIC_BASE_URL: upstream.url, ANTHROPIC_MODEL: 'claude-test-model', RATE_LIMIT_PER_MINUTE: '10000' });
});
afterAll(async () => {
  tabs.closeAll();
  await Promise.all(apps.map((a) => a.close()));
  await Promise.all([upstream?.close(), redis?.[Symbol.asyncDispose](), admin.end()]);
  fs.rmSync(dir, { recursive: true, force: true });
});

async function startApp(): Promise<TestApp> {
  const app = await startTestApp(env);
  apps.push(app);
  return app;
}

/** Everything a user sees: their tasks (trash and completed included) with the sequence, their conversations and every message. */
async function everything(tab: Tab) {
  const tasks = await tab.call('task:sync', { since: 0 });
  const { conversations } = await tab.call('conversation:list', {});
  const messages = await Promise.all(conversations.map(async (c) => (await tab.call('chat:history', { conversationId: c.id, limit: 100 })).messages));
  return { seq: tasks.seq, tasks: byId(tasks.tasks), conversations, messages };
}
const byId = <T extends { id: string }>(items: T[]) => [...items].sort((x, y) => x.id.localeCompare(y.id));

/** Asks the assistant (the offline model) and waits for its answer to end. */
async function ask(tab: Tab, content: string, conversationId?: string): Promise<string> {
  const sent = await tab.call('chat:send', conversationId ? { conversationId, content } : { content });
  const { message } = await doneOf(tab, sent.assistantMessageId);
  expect(message.status).toBe('complete');
  return sent.conversationId;
}

describe('the restore drill', () => {
  it('[AUTH-8][RT-1][SYNC-1] backup, drop the database, flush Redis, restore: a revoked token is still refused, users log in, every task and message is back, a tab catches up from its old seq', async () => {
    const app = await startApp();
    const alice = await signUp(app.url, { timezone: 'Europe/Paris' });
    const bob = await signUp(app.url);
    const aliceTab = tabs.track(await connectReady(app.url, alice.auth.accessToken));
    const bobTab = tabs.track(await connectReady(app.url, bob.auth.accessToken));

    // Tasks in every state: open, edited, completed (a recurring one with its next occurrence), in the trash.
    const walk = (await aliceTab.call('task:create', { title: 'walk the dog', intensity: 2, project: 'home' })).task;
    const taxes = (await aliceTab.call('task:create', { title: 'file taxes', deadline: '2027-04-15', intensity: 5 })).task;
    const water = (await aliceTab.call('task:create', { title: 'water plants', deadline: '2026-12-07', recurrence: { type: 'weekly', interval: 1, endDate: null } })).task;
    const junk = (await aliceTab.call('task:create', { title: 'junk' })).task;
    const old = (await aliceTab.call('task:create', { title: 'old idea' })).task;
    await aliceTab.call('task:update', { id: taxes.id, expectedVersion: taxes.version, patch: { status: 'in_progress', description: 'ask the accountant' } });
    const completed = await aliceTab.call('task:complete', { id: water.id, notes: 'done' });
    expect(completed.next).not.toBeNull();
    await aliceTab.call('task:delete', { id: old.id });
    // The tab's last sequence number: it goes away here and comes back after the restore.
    const oldSeq = (await aliceTab.call('task:delete', { id: junk.id })).task.seq;
    aliceTab.close();

    // What it misses: changes from another tab, a purge (a tombstone), and the assistant's tool.
    const otherTab = tabs.track(await connectReady(app.url, alice.auth.accessToken));
    await otherTab.call('task:complete', { id: walk.id });
    await otherTab.call('task:purge', { id: junk.id });
    await otherTab.call('task:create', { title: 'call mum' });
    const conversation = await ask(otherTab, 'add task: buy milk');
    await ask(otherTab, 'hello there', conversation);
    await ask(otherTab, 'list my tasks');
    await bobTab.call('task:create', { title: "bob's task" });
    await ask(bobTab, 'hello');

    // A revoked session whose access token has not expired.
    const laptop = await logIn(app.url, alice.email, alice.password);
    expect((await laptop.client.post('/api/v1/auth/logout', undefined, { token: laptop.auth.accessToken })).status).toBe(204);
    expect(await connectError(app.url, laptop.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);

    const before = { alice: await everything(otherTab), bob: await everything(bobTab) };
    const catchUp = await otherTab.call('task:sync', { since: oldSeq });
    expect(catchUp.removed).toEqual([junk.id]);
    expect(catchUp.tasks.map((t) => t.title).sort()).toEqual(['buy milk', 'call mum', 'walk the dog']);
    expect(before.alice.messages.flat().length).toBe(6);

    // The backup, through the deployment's command.
    const file = path.join(dir, 'drill.dump');
    const backup = await runCli(env, 'backup', '--out', file);
    expect(backup.stderr).toBe('');
    expect(backup.code).toBe(0);
    expect(backup.stdout).toContain(`backup written: ${file}`);
    const manifest = readManifest(file);
    expect(manifest).toMatchObject({ format: 'sam-backup', database: databaseName(env.DATABASE_URL!), schemaVersion: expect.stringMatching(/^Migration\d+_/), server: { major: 15 } });
    expect(manifest.dump).toEqual({ file: 'drill.dump', bytes: fs.statSync(file).size, sha256: sha256Of(file) });
    const expectedTables = await tablesOf(env.DATABASE_URL!);
    expect(Object.fromEntries(Object.entries(manifest.tables).map(([name, rows]) => [name.replace(/^public\./, ''), rows]))).toEqual(expectedTables);
    expect(manifest.tables['public.users']).toBe(2);
    expect(manifest.tables['public.tasks']).toBe(before.alice.tasks.length + before.bob.tasks.length);
    expect(manifest.tables['public.messages']).toBe(before.alice.messages.flat().length + before.bob.messages.flat().length);
    expect(manifest.tables['public.task_tombstones']).toBe(1);

    // A change after the backup: a restore forgets it, and a tab that saw it is ahead of the restored seq.
    const lost = await otherTab.call('task:create', { title: 'made after the backup' });
    expect(lost.task.seq).toBe(before.alice.seq + 1);

    // The disaster: the server gone, the database dropped, Redis empty.
    tabs.closeAll();
    await app.close();
    await admin.unsafe(`drop database "${databaseName(env.DATABASE_URL!)}" with (force)`);
    expect(await databaseExists(env.DATABASE_URL!)).toBe(false);
    await redis.flushAll();
    expect(await redis.command('DBSIZE')).toBe(0);

    const restored = await runCli(env, 'restore', file);
    expect(restored.stderr).toBe('');
    expect(restored.code).toBe(0);
    expect(restored.stdout).toContain('verified');
    expect(await tablesOf(env.DATABASE_URL!)).toEqual(expectedTables);

    const again = await startApp();
    // The blacklist is rebuilt from PostgreSQL when the node starts, before any token is checked.
    const rebuilt = await again.logs.waitFor((r) => r.event === 'blacklist', 10_000);
    expect(rebuilt.entries).toBe(1);
    expect(await redis.command('EXISTS', `${env.REDIS_PREFIX}bl:sid:${sidOf(laptop.auth.accessToken)}`)).toBe(1);
    expect(await connectError(again.url, laptop.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);

    // A user logs in with their password; the other user's unexpired token still opens a tab.
    const aliceAgain = await logIn(again.url, alice.email, alice.password);
    const aliceNew = tabs.track(await connectReady(again.url, aliceAgain.auth.accessToken));
    const bobAgain = tabs.track(await connectReady(again.url, bob.auth.accessToken));
    expect({ alice: await everything(aliceNew), bob: await everything(bobAgain) }).toEqual(before);

    // The tab that left at `oldSeq` resumes with its token and catches up (SYNC-1).
    const resumed = tabs.track(await connectReady(again.url, alice.auth.accessToken));
    expect(resumed.ready.taskSeq).toBe(before.alice.seq);
    const caughtUp = await resumed.call('task:sync', { since: oldSeq });
    expect({ ...caughtUp, tasks: byId(caughtUp.tasks) }).toEqual({ ...catchUp, tasks: byId(catchUp.tasks) });
    // A tab that saw the change made after the backup is ahead of the database: it gets everything, to replace its copy.
    const ahead = await resumed.call('task:sync', { since: lost.task.seq });
    expect({ ...ahead, tasks: byId(ahead.tasks) }).toEqual({ seq: before.alice.seq, tasks: before.alice.tasks, removed: [], reset: true });
    // And the sequence goes on from where it was: the other tab hears the next change.
    const next = await resumed.call('task:create', { title: 'after the restore' });
    expect(next.task.seq).toBe(before.alice.seq + 1);
    await aliceNew.waitFor('task:changed', (d) => d.task.id === next.task.id && d.seq === before.alice.seq + 1);
  }, 60_000);
});

describe('backups and restores that fail', () => {
  let file: string;
  beforeAll(async () => {
    file = path.join(dir, 'failures.dump');
    const backup = await runCli(env, 'backup', '--out', file);
    if (backup.code !== 0) throw new Error(`backup failed: ${backup.stderr}`);
  });

  /** The restore command against `databaseUrl`. */
  const restoreInto = (databaseUrl: string, ...args: string[]) => runCli({ ...env, DATABASE_URL: databaseUrl }, 'restore', ...args);
  /** A copy of the backup under another name, its dump changed by `change` (the manifest as it was). */
  function damagedCopy(name: string, change: (dump: Buffer) => Buffer, manifest: (m: BackupManifest, dump: Buffer) => BackupManifest = (m) => m): string {
    const copy = path.join(dir, name);
    const dump = change(fs.readFileSync(file));
    fs.writeFileSync(copy, dump);
    fs.writeFileSync(`${copy}.manifest.json`, JSON.stringify(manifest(readManifest(file), dump)));
    return copy;
  }

  it('restore refuses a database that holds data, unless --force, which replaces what it held', async () => {
    const target = scratchDatabaseUrl();
    await admin.unsafe(`create database "${databaseName(target)}"`);
    const sql = postgres(target, { max: 1, onnotice: () => undefined });
    await sql`create table notes (body text)`;
    await sql`insert into notes values ('keep me')`;
    await sql.end();

    const refused = await restoreInto(target, file);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^restore failed: the database \S+ is not empty \(1 tables, 1 rows\): restore into an empty database, or pass --force to replace its contents\n$/);
    expect(await tablesOf(target)).toEqual({ notes: 1 });

    // The database the drill restored holds Sam's tables: refused as well.
    const sam = await restoreInto(env.DATABASE_URL!, file);
    expect(sam.code).toBe(1);
    expect(sam.stderr).toMatch(/is not empty \(\d+ tables, \d+ rows, Sam schema Migration\d+_\w+\)/);

    const forced = await restoreInto(target, file, '--force');
    expect(forced.stderr).toBe('');
    expect(forced.code).toBe(0);
    const tables = await tablesOf(target);
    expect(tables.notes).toBeUndefined();
    expect(tables.users).toBe(readManifest(file).tables['public.users']);
  }, 30_000);

  it('restore refuses a dump with one byte changed (checksum), before it creates or touches the database', async () => {
    const corrupt = damagedCopy('corrupt.dump', (dump) => {
      const copy = Buffer.from(dump);
      const at = Math.floor(copy.length / 2);
      copy[at] = copy[at]! ^ 0xff;
      return copy;
    });
    const target = scratchDatabaseUrl();
    const result = await restoreInto(target, corrupt);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^restore failed: checksum mismatch: \S+corrupt\.dump is not the dump its manifest describes .*damaged or was replaced\n$/);
    expect(await databaseExists(target)).toBe(false);
  });

  it('restore of a dump that pg_restore cannot read fails with its message and leaves the database empty', async () => {
    // Cut short, with a manifest that matches it: only pg_restore can tell.
    const truncated = damagedCopy(
      'truncated.dump',
      (dump) => dump.subarray(0, Math.floor(dump.length * 0.7)),
      (m, dump) => ({ ...m, dump: { ...m.dump, bytes: dump.length, sha256: createHash('sha256').update(dump).digest('hex') } }),
    );
    const target = scratchDatabaseUrl();
    const result = await restoreInto(target, truncated);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^restore failed: pg_restore exited with 1: pg_restore: error: .+\n$/);
    expect(await tablesOf(target)).toEqual({});
  });

  it('a manifest that does not match what is restored fails the restore; one of an unknown schema version is refused before it', async () => {
    const miscounted = damagedCopy('miscounted.dump', (dump) => dump, (m) => ({ ...m, tables: { ...m.tables, 'public.users': m.tables['public.users']! + 1 } }));
    const target = scratchDatabaseUrl();
    const result = await restoreInto(target, miscounted);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^restore failed: the database was restored but differs from the manifest, do not use it: public\.users has (\d+) rows, the backup \d+\n$/);

    const future = damagedCopy('future.dump', (dump) => dump, (m) => ({ ...m, schemaVersion: 'Migration29991231000000_Future' }));
    const refused = await restoreInto(scratchDatabaseUrl(), future);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe('restore failed: the backup\'s schema version Migration29991231000000_Future is unknown to this build of Sam: restore it with the version of Sam that took it\n');
  }, 30_000);

  it('restore of a missing file, or of a dump without its manifest, exits 1 saying so (npm run restore too)', async () => {
    const missing = path.join(dir, 'no-such.dump');
    const viaNpm = await runProcess(['run', '--silent', 'restore', '--', missing], env, { command: 'npm', cwd: repoRoot, timeoutMs: 60_000 });
    expect(viaNpm.code).not.toBe(0);
    expect(viaNpm.stderr).toContain(`restore failed: no such file: ${missing}\n`);

    const alone = path.join(dir, 'alone.dump');
    fs.copyFileSync(file, alone);
    const result = await restoreInto(scratchDatabaseUrl(), alone);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`restore failed: no manifest beside the dump (${alone}.manifest.json): not a complete Sam backup\n`);
  }, 60_000);

  it('backup and restore without their arguments print the usage and exit 2; a backup into a missing directory exits 1', async () => {
    for (const args of [['backup', '--out'], ['restore'], ['restore', 'a', 'b']]) {
      const result = await runCli(env, ...args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(/^usage: npm run backup/);
    }
    const result = await runCli(env, 'backup', '--out', path.join(dir, 'missing', 'x.dump'));
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`backup failed: the directory ${path.join(dir, 'missing')} does not exist\n`);

    // A database that is not there, and one that is not Sam's: nothing is written.
    const absent = scratchDatabaseUrl();
    const none = await runCli({ ...env, DATABASE_URL: absent }, 'backup', '--out', path.join(dir, 'absent.dump'));
    expect(none.code).toBe(1);
    expect(none.stderr).toBe(`backup failed: database "${databaseName(absent)}" does not exist\n`);
    const other = scratchDatabaseUrl();
    await admin.unsafe(`create database "${databaseName(other)}"`);
    const notSam = await runCli({ ...env, DATABASE_URL: other }, 'backup', '--out', path.join(dir, 'other.dump'));
    expect(notSam.code).toBe(1);
    expect(notSam.stderr).toBe('backup failed: the database has no applied migrations (no mikro_orm_migrations rows): it is not a Sam database\n');
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('absent') || f.startsWith('other'))).toEqual([]);
  }, 30_000);
});
