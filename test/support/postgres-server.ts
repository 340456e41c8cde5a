/**
 * A PostgreSQL server of the test's own (initdb in a temporary folder, its own
 * port), which the test may restart without disturbing anything else.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
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

/** `su`'s arguments that run a PostgreSQL tool as the `postgres` user (the server refuses to run as root). */
const suArgs = (tool: string, args: string[]) => ['postgres', '-s', '/bin/sh', '-c', [path.join(binDir(), tool), ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')];

function asPostgres(tool: string, args: string[]): void {
  const res = spawnSync('su', suArgs(tool, args), { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`${tool} failed: ${res.stderr || res.stdout}`);
}

/** The same, without blocking the event loop: the test's own clients go on meanwhile (a drill's load). */
function asPostgresAsync(tool: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('su', suArgs(tool, args), { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${tool} failed: ${output}`))));
  });
}

export interface OwnPostgres extends AsyncDisposable {
  /** admin URL (database `postgres`) */
  url(database?: string): string;
  /** `fast` (the default) ends sessions and checkpoints; `immediate` is a crash: recovery replays the WAL at start. */
  restart(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Stops the server for a while (`up()` starts it again); its data stays. */
  down(mode?: 'fast' | 'immediate'): Promise<void>;
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
  const startArgs = ['-D', data, '-o', options, '-w', '-t', '30', '-l', path.join(dir, 'log'), 'start'];
  const stopArgs = (mode: 'fast' | 'immediate') => ['-D', data, '-m', mode, '-w', 'stop'];
  const start = () => asPostgresAsync('pg_ctl', startArgs);
  const stop = (mode: 'fast' | 'immediate' = 'fast') => asPostgresAsync('pg_ctl', stopArgs(mode));
  asPostgres('pg_ctl', startArgs);
  let stopped = false;
  const stopForGood = async () => {
    if (stopped) return;
    stopped = true;
    await stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return {
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async restart(mode = 'fast') {
      await stop(mode);
      await start();
    },
    async down(mode = 'fast') {
      await stop(mode);
    },
    async up() {
      await start();
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
