/** A Redis server of the test's own, on its own port, that the test may stop, restart and flush. */
import { freePort } from './net.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';


export interface OwnRedis extends AsyncDisposable {
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  flushAll(): Promise<void>;
}

export async function startOwnRedis(): Promise<OwnRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
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
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    stop,
    async flushAll() {
      const client = new Redis({ port, host: '127.0.0.1' });
      await client.flushall();
      client.disconnect();
    },
    [Symbol.asyncDispose]: stop,
  };
}
