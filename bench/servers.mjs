// Launching what the bench measures: Sam in production mode (built dist/), the
// bare baseline, the fake upstream; the bench database and its users.
//
// Users are NOT signed up one by one (each signup is an argon2 hash, tens of
// milliseconds of a core): one user signs up through the real API, its argon2 hash is
// copied to every bench user inserted straight into PostgreSQL (so logins in
// scenario 5 verify a real hash with the server's own parameters), each user
// gets one `sessions` row and one task, and the bench mints the access tokens
// itself with the SECRET_KEY it gave the server (HS256, same claims as
// server/features/auth/tokens.ts). The socket handshake checks only the JWT and
// the Redis blacklist, so no refresh token is needed.
import { spawn, fork } from 'node:child_process';
import { createSecretKey, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { WebSocket } from 'ws';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { cpuTimes, nodeArgsFrom, sleep, statTicks, waitFor } from './lib.mjs';

const require = createRequire(import.meta.url);
const jwt = require('jsonwebtoken');
const pg = require('pg'); // a dependency of @mikro-orm/postgresql
const { Redis } = require('ioredis');

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sam-bench-'));

/**
 * The node flags of the Procfile's web process (`web: node <flags> dist/server/main.js`): Sam runs in the
 * bench as it is deployed, and the bare baseline gets the same runtime flags.
 */
export const webNodeFlags = (() => {
  const web = /^web:\s*node\s+(.*?)\s*dist\/server\/main\.js\s*$/m.exec(fs.readFileSync(path.join(root, 'Procfile'), 'utf8'));
  if (!web) throw new Error('Procfile: no "web: node … dist/server/main.js" line');
  return web[1].split(/\s+/).filter(Boolean);
})();

/**
 * A random port for the servers, below the range the kernel hands out to outgoing connections: the generators
 * open tens of thousands, and a port in that range can be taken by one of them before the server listens.
 * The servers take this port and the next few.
 */
export function portBelowEphemeralRange() {
  let low = 32_768;
  try {
    low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    // keep the kernel's default
  }
  return 10_000 + Math.floor(Math.random() * Math.max(1_000, low - 10_010));
}

/** Every child process we started, so that exit handlers can end them (by pid). */
export const children = new Set();

function track(child, name) {
  child.benchName = name;
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function killAll(signal = 'SIGKILL') {
  for (const c of children) {
    try {
      process.kill(c.pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Secrets and names of one bench run, generated at run time (never written to files). */
export function runIdentity() {
  const id = randomBytes(4).toString('hex');
  return {
    id,
    dbName: `sam_bench_${id}`,
    redisPrefix: `sam-bench-${id}:`,
    secretKey: randomBytes(32).toString('base64url'),
    metricsToken: randomBytes(16).toString('hex'),
    password: `Bench-${randomBytes(6).toString('hex')}9a!Z`,
  };
}

const dbUrl = (ident) => `postgres://postgres@127.0.0.1:5432/${ident.dbName}`;

export function samEnv(ident, { port, nodeId, upstreamUrl }) {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ENVIRONMENT: 'production',
    PORT: String(port),
    NODE_ID: nodeId,
    SECRET_KEY: ident.secretKey,
    DATABASE_URL: dbUrl(ident),
    REDIS_URL: 'redis://127.0.0.1:6379',
    REDIS_PREFIX: ident.redisPrefix,
    METRICS_TOKEN: ident.metricsToken,
    ANTHROPIC_API_KEY: randomBytes(12).toString('hex'),
    ANTHROPIC_BASE_URL: upstreamUrl ?? 'http://127.0.0.1:9',
    HIBP_API_URL: 'off',
    RATE_LIMIT_PER_MINUTE: '1000000',
    SOCKET_EVENTS_PER_MINUTE: '1000000',
    CHAT_MESSAGES_PER_MINUTE: '100000',
    ACCESS_TOKEN_EXPIRE_MINUTES: '120',
    LOGIN_MAX_FAILURES: '1000',
    LOG_LEVEL: 'warn',
  };
}

export async function migrate(ident) {
  await new Promise((resolve, reject) => {
    const c = track(spawn(process.execPath, ['dist/server/db/migrate.js'], { cwd: root, env: samEnv(ident, { port: 0, nodeId: 'migrate' }), stdio: ['ignore', 'ignore', 'pipe'] }), 'migrate');
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`migrate failed: ${err}`))));
  });
}

async function waitHealthy(url, child, timeoutMs = 20_000) {
  const ok = await waitFor(
    async () => {
      if (child.exitCode !== null) return 'exited';
      try {
        const r = await fetch(`${url}/health`);
        return r.status === 200;
      } catch {
        return false;
      }
    },
    { timeoutMs, intervalMs: 100 },
  );
  if (ok !== true) throw new Error(`${child.benchName} did not become healthy (${ok}); log: ${child.logFile}`);
}

/** The CPU profiles of the Sam processes this run started with `profile` (written when each exits). */
export const profilesWritten = [];

/** Starts one Sam node; resolves when /health answers 200. */
export async function startSam(ident, { port, nodeId, upstreamUrl, profile }) {
  const logFile = path.join(logDir, `${nodeId}.log`);
  const out = fs.openSync(logFile, 'a');
  const args = [...webNodeFlags];
  // BENCH_SAM_NODE_ARGS: extra node flags for Sam (e.g. --trace-gc).
  args.push(...nodeArgsFrom('BENCH_SAM_NODE_ARGS'));
  // The inspector, on loopback with a random port, lets the bench collect garbage before it reads the heap
  // (as it does in bare over IPC): the issue asks for the heap after GC. Nothing connects to it otherwise.
  // The collection is `gc()`, as in bare, not the inspector's own: that one is V8's low-memory collection,
  // which also releases the young generation, so that Sam's fresh RSS (the base of its RSS per socket) and
  // its next window started without one, and bare's did not (bench/README.md, "Method").
  args.push('--inspect=127.0.0.1:0', '--expose-gc');
  if (profile) {
    const name = `sam-${nodeId}-${Date.now()}.cpuprofile`;
    args.push('--cpu-prof', `--cpu-prof-dir=${path.join(root, 'bench/profiles')}`, `--cpu-prof-name=${name}`);
    profilesWritten.push(path.join(root, 'bench/profiles', name));
  }
  args.push('dist/server/main.js');
  const child = track(spawn(process.execPath, args, { cwd: root, env: samEnv(ident, { port, nodeId, upstreamUrl }), stdio: ['ignore', out, out] }), nodeId);
  child.logFile = logFile;
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(url, child);
  return { kind: 'sam', child, url, port, nodeId, ident };
}

/** Starts one bare node (forked: it answers `mem` over IPC with its heap after GC). */
export async function startBare({ port, nodeId, upstreamUrl, redisPrefix }) {
  const logFile = path.join(logDir, `${nodeId}.log`);
  const out = fs.openSync(logFile, 'a');
  const env = { PATH: process.env.PATH, PORT: String(port), NODE_ID: nodeId };
  if (upstreamUrl) env.UPSTREAM_URL = upstreamUrl;
  if (redisPrefix) Object.assign(env, { BARE_REDIS_URL: 'redis://127.0.0.1:6379', BARE_REDIS_PREFIX: redisPrefix });
  const child = track(fork(path.join(root, 'bench/bare-server.mjs'), [], { cwd: root, env, execArgv: ['--expose-gc', ...webNodeFlags, ...nodeArgsFrom('BENCH_BARE_NODE_ARGS')], stdio: ['ignore', out, out, 'ipc'] }), nodeId);
  child.logFile = logFile;
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(url, child);
  return { kind: 'bare', child, url, port, nodeId, redisPrefix };
}

/** Stops a node (SIGTERM, then SIGKILL after `graceMs`); resolves when it has exited. */
export async function stopNode(node, graceMs = 10_000, signal = 'SIGTERM') {
  const c = node.child;
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill(signal);
  const t = setTimeout(() => c.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

/** Restarts a node on the same port with the same settings. */
export async function restartNode(node, opts, signal = 'SIGTERM') {
  const t0 = Date.now();
  await stopNode(node, 10_000, signal);
  node.stoppedAfterMs = Date.now() - t0;
  const fresh = node.kind === 'sam' ? await startSam(node.ident, { port: node.port, nodeId: node.nodeId, ...opts }) : await startBare({ port: node.port, nodeId: node.nodeId, ...opts });
  fresh.previousStoppedAfterMs = node.stoppedAfterMs;
  return fresh;
}

/** RSS of a process in bytes, from /proc. */
export function rssOf(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** CPU seconds (user+system) of a process, from /proc. */
export function cpuOf(pid) {
  try {
    return statTicks(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')) / 100;
  } catch {
    return null;
  }
}

/** The bench's database (`countPostgresFor`): PostgreSQL backends serving other databases count as `other`. */
let benchDatabase;

/**
 * From now on, PostgreSQL's CPU is that of the backends serving `dbName` and of its shared processes (the
 * WAL writer, the checkpointer…): the machine may hold other work's databases (tests run beside the bench).
 */
export function countPostgresFor(dbName) {
  benchDatabase = dbName;
}

/** Whether a `postgres` process is a client backend serving another database than the bench's (from its title). */
function otherDatabaseBackend(pid) {
  if (!benchDatabase) return false;
  let title;
  try {
    title = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return false;
  }
  // "postgres: [cluster:] user database host(port) activity"; the shared processes name no client
  const client = /\(\d+\)|\[local\]/.test(title);
  return client && !title.split(/\s+/).includes(benchDatabase);
}

/**
 * CPU ticks (1/100 s, user + system, all threads) of every process on the machine, each with its role: the
 * server node(s) under test, the generators, PostgreSQL, Redis, the bench's own processes (this one and the
 * fake upstream) and everything else; plus the machine's idle and total ticks. Differences of two readings
 * (`cpuSpent`) say where a window's CPU went, e.g. per task update in the fan-out. With `measuredPid`, only
 * that server node counts as the server; another one, idle meanwhile (the paired rounds), counts as other.
 */
export function cpuByRole(measuredPid) {
  const roles = new Map([[process.pid, 'bench']]);
  const serverRole = (pid) => (measuredPid === undefined || pid === measuredPid ? 'server' : 'other');
  for (const c of children) roles.set(c.pid, c.benchName?.startsWith('gen') ? 'generators' : c.benchName === 'upstream' ? 'bench' : serverRole(c.pid));
  const pids = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (d.charCodeAt(0) > 57) continue;
    let s;
    try {
      s = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const comm = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
    let role = roles.get(Number(d)) ?? (comm === 'postgres' ? 'postgres' : comm.startsWith('redis-server') ? 'redis' : 'other');
    if (role === 'postgres' && otherDatabaseBackend(d)) role = 'other';
    pids.set(d, { role, ticks: statTicks(s) });
  }
  return { pids, ...cpuTimes() };
}

/**
 * CPU milliseconds by role between two `cpuByRole()` readings (`idle` over all cores), process by process:
 * a process that started in between counts whole, one that exited in between is lost (subtracting totals by
 * role would instead charge its whole past to the window, as a negative figure).
 */
export function cpuSpent(a, b) {
  const out = { server: 0, postgres: 0, redis: 0, generators: 0, bench: 0, other: 0 };
  for (const [pid, p] of b.pids) {
    const before = a.pids.get(pid);
    // a smaller count than before means the pid was reused by a new process
    out[p.role] += (before && before.ticks <= p.ticks ? p.ticks - before.ticks : p.ticks) * 10;
  }
  out.idle = (b.idle - a.idle) * 10;
  return out;
}

/** Heap used after a full GC: bare over IPC, Sam through its inspector (see startSam). */
export async function heapOf(node) {
  if (node.kind === 'bare') {
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(null), 5_000);
      const on = (m) => {
        if (m?.cmd !== 'mem') return;
        clearTimeout(t);
        node.child.off('message', on);
        resolve(m.heapUsed);
      };
      node.child.on('message', on);
      node.child.send({ cmd: 'mem' });
    });
  }
  const url = [...fs.readFileSync(node.child.logFile, 'utf8').matchAll(/Debugger listening on (ws:\/\/\S+)/g)].at(-1)?.[1];
  if (!url) return null;
  const ws = new WebSocket(url);
  try {
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    let seq = 0;
    const call = (method, params) =>
      new Promise((resolve, reject) => {
        const id = ++seq;
        const t = setTimeout(() => reject(new Error(`${method} timed out`)), 10_000);
        const on = (data) => {
          const m = JSON.parse(String(data));
          if (m.id !== id) return;
          clearTimeout(t);
          ws.off('message', on);
          resolve(m.result);
        };
        ws.on('message', on);
        ws.send(JSON.stringify({ id, method, params }));
      });
    const r = await call('Runtime.evaluate', { expression: 'gc(), process.memoryUsage().heapUsed', returnByValue: true });
    return typeof r?.result?.value === 'number' ? r.result.value : null;
  } catch {
    return null;
  } finally {
    ws.close();
  }
}

export async function startUpstream(streamChars) {
  const child = track(fork(path.join(root, 'bench/upstream.mjs'), [], { cwd: root, env: { PATH: process.env.PATH, STREAM_CHARS: String(streamChars) }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }), 'upstream');
  const url = await new Promise((resolve, reject) => {
    child.once('message', (m) => (m?.cmd === 'listening' ? resolve(m.url) : reject(new Error('upstream failed'))));
    child.once('exit', () => reject(new Error('upstream exited')));
  });
  let n = 0;
  return {
    child,
    url,
    dump: () =>
      new Promise((resolve) => {
        const id = ++n;
        const on = (m) => {
          if (m?.cmd === 'dump' && m.id === id) {
            child.off('message', on);
            resolve(m.streams);
          }
        };
        child.on('message', on);
        child.send({ cmd: 'dump', id });
      }),
  };
}

/** Signs one user up through the API and returns its argon2 hash (the server's own parameters). */
export async function sharedPasswordHash(ident, url) {
  const email = `bench-seed-${ident.id}@bench.invalid`;
  const r = await fetch(`${url}/api/v1/auth/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: ident.password }) });
  if (r.status !== 201) throw new Error(`signup failed: ${r.status} ${await r.text()}`);
  const client = new pg.Client({ connectionString: dbUrl(ident) });
  await client.connect();
  try {
    const { rows } = await client.query('select password_hash from users where email = $1', [email]);
    return rows[0].password_hash;
  } finally {
    await client.end();
  }
}

/** Inserts `count` users (one session and one task each) and mints their access tokens. */
export async function seedUsers(ident, count, passwordHash, { emailPrefix = 'bench-' } = {}) {
  const client = new pg.Client({ connectionString: dbUrl(ident) });
  await client.connect();
  const key = createSecretKey(Buffer.from(ident.secretKey, 'utf8'));
  const iat = Math.floor(Date.now() / 1000);
  const exp = iat + 7_200;
  const out = [];
  try {
    for (let start = 0; start < count; start += 2_000) {
      const n = Math.min(2_000, count - start);
      const ids = [], idx = [], sids = [], tids = [];
      for (let i = 0; i < n; i++) {
        ids.push(randomUUID());
        idx.push(start + i);
        sids.push(randomUUID());
        tids.push(randomUUID());
      }
      await client.query('begin');
      await client.query(
        `insert into users (id, email, password_hash, full_name, timezone, role, task_seq, created_at, updated_at)
         select u, $4 || i || '@bench.invalid', $3, '', 'UTC', 'user', 1, now(), now() from unnest($1::uuid[], $2::int[]) as t(u, i)`,
        [ids, idx, passwordHash, emailPrefix],
      );
      await client.query(
        `insert into sessions (id, user_id, created_at, last_used_at, absolute_expires_at, rotations)
         select s, u, now(), now(), now() + interval '7 days', 0 from unnest($1::uuid[], $2::uuid[]) as t(s, u)`,
        [sids, ids],
      );
      await client.query(
        `insert into tasks (id, user_id, title, description, intensity, status, dependencies, version, seq, created_at, updated_at)
         select t, u, 'Bench task', '', 3, 'not_started', '{}', 1, 1, now(), now() from unnest($1::uuid[], $2::uuid[]) as x(t, u)`,
        [tids, ids],
      );
      await client.query('commit');
      for (let i = 0; i < n; i++) {
        const token = jwt.sign({ sub: ids[i], sid: sids[i], jti: randomUUID(), typ: 'access', role: 'user', iat, exp }, key, { algorithm: 'HS256' });
        out.push({ userId: ids[i], token, taskId: tids[i], email: `bench-${start + i}@bench.invalid` });
      }
    }
    // What autovacuum would do to the fresh rows within its first minute, done before the first measured window
    // rather than during it (on a slow machine it took the first capacity step's ack p99 over 50 ms).
    await client.query('vacuum analyze users, sessions, tasks');
  } finally {
    await client.end();
  }
  return out;
}

/**
 * The reminders due in [from, to) as PostgreSQL holds them after the reminders phase: how many in each state
 * (late or not), and when the firing node marked them delivered (`fired_at`, after its broadcast) against
 * their time, in ms. Read after the phase, never during it.
 */
export async function reminderStats(ident, from, to) {
  const client = new pg.Client({ connectionString: dbUrl(ident) });
  await client.connect();
  try {
    const { rows: states } = await client.query(
      `select state || case when late then ' late' else '' end as k, count(*)::int as n from reminders where fires_at >= $1 and fires_at < $2 group by 1 order by 1`,
      [from, to],
    );
    const { rows: [lag] } = await client.query(
      `select percentile_disc(array[0.5, 0.99, 1]) within group (order by extract(epoch from fired_at - fires_at) * 1000) as ms
         from reminders where fires_at >= $1 and fires_at < $2 and fired_at is not null`,
      [from, to],
    );
    const [p50, p99, max] = (lag?.ms ?? []).map((v) => Math.round(Number(v)));
    // A claim round marks what it fired in one statement, so one `fired_at` is one round of one node: how many
    // rounds fired something, how many reminders each, and the gaps between rounds (of both nodes together).
    const { rows: [rounds] } = await client.query(
      `with r as (select fired_at, count(*)::int as n from reminders where fires_at >= $1 and fires_at < $2 and fired_at is not null group by fired_at),
            g as (select n, extract(epoch from fired_at - lag(fired_at) over (order by fired_at)) * 1000 as gap from r)
       select count(*)::int as rounds, percentile_disc(0.5) within group (order by n) as n50, max(n) as nmax,
              percentile_disc(array[0.1, 0.5, 0.9]) within group (order by gap) as gaps from g`,
      [from, to],
    );
    const [g10, g50, g90] = (rounds?.gaps ?? []).map((v) => Math.round(Number(v)));
    return {
      states: Object.fromEntries(states.map((r) => [r.k, r.n])),
      firedLagMs: { p50, p99, max },
      rounds: { count: rounds?.rounds ?? 0, remindersP50: rounds?.n50 ?? null, remindersMax: rounds?.nmax ?? null, gapMs: { p10: g10, p50: g50, p90: g90 } },
    };
  } finally {
    await client.end();
  }
}

/** Drops the bench database and deletes the Redis keys of the run's prefixes. */
export async function cleanup(ident, prefixes) {
  const results = {};
  try {
    const client = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await client.connect();
    await client.query(`drop database if exists "${ident.dbName}" with (force)`);
    await client.end();
    results.database = 'dropped';
  } catch (err) {
    results.database = `not dropped: ${err.message}`;
  }
  try {
    const redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    let deleted = 0;
    for (const prefix of prefixes) {
      let cursor = '0';
      for (let i = 0; i < 100_000; i++) {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        if (keys.length) deleted += await redis.unlink(...keys);
        cursor = next;
        if (cursor === '0') break;
      }
    }
    redis.disconnect();
    results.redisKeysDeleted = deleted;
  } catch (err) {
    results.redis = `not cleaned: ${err.message}`;
  }
  return results;
}

export { sleep };
