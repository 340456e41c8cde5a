/** Disposable servers for tests: in-process (`startTestApp`) or as a real process (`startNodeProcess`). */
import { Writable } from 'node:stream';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { loadConfig } from '../../server/config.js';
import { createLogger } from '../../server/logger.js';
import { createDeps, type Deps } from '../../server/deps.js';
import { createApp } from '../../server/app.js';
import { tabTracker } from './sockets.js';

export interface LogSink {
  lines: string[];
  /** parsed JSON log records */
  records(): Record<string, unknown>[];
  /** Resolves when a record matching `match` appears. */
  waitFor(match: (r: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

function createLogSink(): LogSink & { push(line: string): void } {
  const lines: string[] = [];
  const waiters = new Set<{ match: (r: Record<string, unknown>) => boolean; resolve: (r: Record<string, unknown>) => void }>();
  const parse = (line: string) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  };
  return {
    lines,
    push(line) {
      lines.push(line);
      const record = parse(line);
      if (!record) return;
      for (const w of waiters) {
        if (w.match(record)) {
          waiters.delete(w);
          w.resolve(record);
        }
      }
    },
    records: () => lines.map(parse).filter((r): r is Record<string, unknown> => r !== undefined),
    waitFor(match, timeoutMs = 10_000) {
      const existing = lines.map(parse).find((r) => r && match(r));
      if (existing) return Promise.resolve(existing);
      return new Promise((resolve, reject) => {
        const waiter = { match, resolve };
        waiters.add(waiter);
        setTimeout(() => {
          if (waiters.delete(waiter)) reject(new Error('log record not seen in time'));
        }, timeoutMs).unref();
      });
    },
  };
}

export interface TestApp extends AsyncDisposable {
  url: string;
  port: number;
  deps: Deps;
  logs: LogSink;
  close(): Promise<void>;
}

export async function startTestApp(env: Record<string, string | undefined>): Promise<TestApp> {
  const config = loadConfig(env);
  const logs = createLogSink();
  let buffer = '';
  const destination = new Writable({
    write(chunk: Buffer, _enc, callback) {
      buffer += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        logs.push(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
      }
      callback();
    },
  });
  const logger = createLogger({ level: config.logLevel, nodeId: config.nodeId, destination });
  const deps = await createDeps(config, logger);
  const app = createApp(deps);
  await new Promise<void>((resolve) => app.server.listen(0, '127.0.0.1', resolve));
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    app.server.closeAllConnections();
    await app.close();
    await deps.close();
  };
  return { url: `http://127.0.0.1:${port}`, port, deps, logs, close, [Symbol.asyncDispose]: close };
}

export interface NodeProcess extends AsyncDisposable {
  url: string;
  port: number;
  child: ChildProcess;
  logs: LogSink;
  stderr: () => string;
  /** SIGTERM and wait for exit; returns the exit code */
  stop(): Promise<number | null>;
  /** SIGKILL: the node dies mid-flight */
  kill(): Promise<void>;
}

const mainJs = path.resolve(import.meta.dirname, '../../dist/server/main.js');

/** Runs the compiled server (`npm run build` first) as its own process. */
export async function startNodeProcess(env: Record<string, string | undefined>, timeoutMs = 15_000): Promise<NodeProcess> {
  const logs = createLogSink();
  let stderr = '';
  const child = spawn(process.execPath, [mainJs], {
    env: { PATH: process.env.PATH, ...env } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      logs.push(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const listening = await Promise.race([
    logs.waitFor((r) => typeof r.port === 'number' && String(r.msg).startsWith('Sam listening'), timeoutMs),
    exited.then((code) => {
      throw new Error(`server exited with ${code}: ${stderr}`);
    }),
  ]);
  const port = listening.port as number;
  const stop = async () => {
    if (child.exitCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    return exited;
  };
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    logs,
    stderr: () => stderr,
    stop,
    async kill() {
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
    [Symbol.asyncDispose]: async () => {
      await stop();
    },
  };
}

export interface Cluster extends AsyncDisposable {
  nodes: TestApp[];
  close(): Promise<void>;
}

/**
 * `count` production-mode nodes of one deployment: they share REDIS_PREFIX and
 * SECRET_KEY, each has its own NODE_ID (`node-a`, `node-b`, …).
 */
export async function startCluster(count: number, env: Record<string, string | undefined>): Promise<Cluster> {
  const nodes: TestApp[] = [];
  for (let i = 0; i < count; i++) {
    nodes.push(await startTestApp({ ...env, NODE_ID: env.NODE_ID ? `${env.NODE_ID}-${i}` : `node-${String.fromCharCode(97 + i)}` }));
  }
  const close = async () => {
    await Promise.all(nodes.map((n) => n.close()));
  };
  return { nodes, close, [Symbol.asyncDispose]: close };
}

/**
 * What the server makes of an access token: 'ok' or the error code. Calls the
 * same check the socket handshake and Bearer routes use.
 */
export async function tokenVerdict(app: TestApp, token: unknown): Promise<string> {
  try {
    await app.deps.auth.authenticate(token);
    return 'ok';
  } catch (err) {
    return (err as { code: string }).code;
  }
}

/**
 * Starts a two-node cluster before the file's tests and closes it, with the
 * tabs the tests opened, after them. `cluster.a` / `cluster.b` are the nodes.
 */
export function useTwoNodes(env: () => Record<string, string | undefined>) {
  let started: Cluster | undefined;
  const tabs = tabTracker();
  beforeAll(async () => {
    started = await startCluster(2, env());
  });
  afterAll(async () => {
    tabs.closeAll();
    await started?.close();
  });
  const node = (i: number): TestApp => {
    if (!started) throw new Error('the cluster starts in beforeAll');
    return started.nodes[i]!;
  };
  return {
    get a() {
      return node(0);
    },
    get b() {
      return node(1);
    },
    track: tabs.track,
  };
}
