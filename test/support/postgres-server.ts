/**
 * A PostgreSQL server of the test's own (initdb in a temporary folder, its own
 * port), which the test may restart without disturbing anything else.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MikroORM } from '@mikro-orm/postgresql';
import { ensureDatabase, migrate, ormOptions } from '../../server/db/orm.js';
import { freePort } from './net.js';

const binDir = () => {
  const root = '/usr/lib/postgresql';
  const version = fs.readdirSync(root).sort().at(-1)!;
  return path.join(root, version, 'bin');
};

/** Runs a PostgreSQL tool as the `postgres` user (the server refuses to run as root). */
function asPostgres(tool: string, args: string[]): void {
  const command = [path.join(binDir(), tool), ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const res = spawnSync('su', ['postgres', '-s', '/bin/sh', '-c', command], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`${tool} failed: ${res.stderr || res.stdout}`);
}

export interface OwnPostgres extends AsyncDisposable {
  /** admin URL (database `postgres`) */
  url(database?: string): string;
  /** `fast` (the default) ends sessions and checkpoints; `immediate` is a crash: recovery replays the WAL at start. */
  restart(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Stops the server for a while (`up()` starts it again); its data stays. */
  down(): Promise<void>;
  up(): Promise<void>;
  stop(): Promise<void>;
}

export async function startOwnPostgres(): Promise<OwnPostgres> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sam-pg-'));
  execFileSync('chown', ['postgres:postgres', dir]);
  const data = path.join(dir, 'data');
  asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const start = () => asPostgres('pg_ctl', ['-D', data, '-o', options, '-w', '-t', '30', '-l', path.join(dir, 'log'), 'start']);
  const stop = (mode: 'fast' | 'immediate' = 'fast') => asPostgres('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']);
  start();
  let stopped = false;
  const stopForGood = async () => {
    if (stopped) return;
    stopped = true;
    stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return {
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async restart(mode = 'fast') {
      stop(mode);
      start();
    },
    async down() {
      stop();
    },
    async up() {
      start();
    },
    stop: stopForGood,
    [Symbol.asyncDispose]: stopForGood,
  };
}

/** Creates the database of `databaseUrl` if it is missing and applies every migration; returns the URL. */
export async function migratedDatabase(databaseUrl: string): Promise<string> {
  await ensureDatabase(databaseUrl);
  const orm = await MikroORM.init(ormOptions({ databaseUrl }));
  try {
    await migrate(orm);
  } finally {
    await orm.close(true);
  }
  return databaseUrl;
}
