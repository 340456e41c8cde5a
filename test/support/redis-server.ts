/** A Redis server of the test's own, on its own port, that the test may stop, restart, pause, snapshot and flush. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './net.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';


export interface OwnRedis extends AsyncDisposable {
  url: string;
  port: number;
  /** SIGKILL: the data in memory is lost (a restart loads the last `snapshot()`, if any) */
  stop(): Promise<void>;
  start(): Promise<void>;
  flushAll(): Promise<void>;
  /** SIGSTOP: the server holds its connections but answers nothing until `resume()` */
  pause(): void;
  /** SIGCONT */
  resume(): void;
  /** SAVE: the data as it is now is what a later restart comes back with */
  snapshot(): Promise<void>;
  /** A command of the test's own (CONFIG SET and the like), on a connection of its own. */
  command(name: string, ...args: (string | number)[]): Promise<unknown>;
}

export async function startOwnRedis(): Promise<OwnRedis> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sam-redis-'));
  let child: ChildProcess | undefined;
  const start = async () => {
    // No automatic saving: only `snapshot()` writes the dump that a restart loads.
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
      stdio: 'ignore',
    });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        await probe.ping();
        probe.disconnect();
        return;
      } catch {
        probe.disconnect();
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new Error('own redis-server did not start');
  };
  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };
  const command = async (name: string, ...args: (string | number)[]) => {
    const client = new Redis({ port, host: '127.0.0.1' });
    try {
      return await client.call(name, ...args);
    } finally {
      client.disconnect();
    }
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    stop,
    async flushAll() {
      await command('FLUSHALL');
    },
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    async snapshot() {
      await command('SAVE');
    },
    command,
    [Symbol.asyncDispose]: async () => {
      child?.kill('SIGCONT');
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
