// `npm run bench:micro`: two quick measurements for A/B checks of a change, with no load generators:
//   1. task:update through the real socket API, in a closed loop (`concurrency` in flight, each done when it is
//      acknowledged and all 3 of its user's tabs have it): Sam (the built server, production mode, a fresh
//      database) and the bare baseline, one after the other; updates/s and CPU per update by process (the
//      server, PostgreSQL, Redis, this process) from /proc, and Sam's server-side CPU against bare's;
//   2. the round trip to PostgreSQL (`select 1`) and to Redis (PING), back to back and after 5 ms with nothing
//      to do (bench/README.md, "Round trips cost more than statements").
// Needs the built server (`npm run build:server`), PostgreSQL and Redis as for `npm run bench`.
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import { io } from 'socket.io-client';
import { pct } from './lib.mjs';
import { cleanup, countPostgresFor, cpuByRole, cpuSpent, killAll, migrate, portBelowEphemeralRange, runIdentity, seedUsers, startBare, startSam, stopNode } from './servers.mjs';

const pg = createRequire(import.meta.url)('pg');
const USERS = 50;
const TABS = 3;

/** Opens `TABS` tabs per user on `url`; resolves when every one has had `session:ready`. */
async function openTabs(url, users) {
  const tabs = [];
  await Promise.all(
    users.flatMap((u) =>
      Array.from({ length: TABS }, (_, t) => {
        const s = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, auth: { token: u.token } });
        tabs.push({ s, user: u, t });
        return new Promise((resolve, reject) => {
          s.once('session:ready', resolve);
          s.once('connect_error', reject);
        });
      }),
    ),
  );
  return tabs;
}

/**
 * `total` updates, `concurrency` at a time, each from its user's first tab; one is done when it is acknowledged
 * and every tab of its user has its `task:changed`.
 */
async function updates(tabs, users, { total, concurrency }) {
  const waiting = new Map(); // title -> { left, done }
  for (const { s } of tabs) {
    s.removeAllListeners('task:changed');
    s.on('task:changed', (p) => {
      const w = waiting.get(p?.task?.title);
      if (w && --w.left === 0) w.done();
    });
  }
  const first = new Map(tabs.filter((t) => t.t === 0).map((t) => [t.user.userId, t.s]));
  const prefix = `m${Date.now().toString(36)}.`;
  let next = 0;
  let failed = 0;
  const one = (i) => {
    const u = users[i % users.length];
    const title = `${prefix}${i}`;
    return new Promise((resolve) => {
      // the ack counts as one more arrival to wait for
      waiting.set(title, { left: TABS + 1, done: resolve });
      first.get(u.userId).emit('task:update', { id: u.taskId, patch: { title } }, (res) => {
        if (!res?.ok) failed++;
        const w = waiting.get(title);
        if (w && --w.left === 0) w.done();
        if (!res?.ok) resolve();
      });
    }).finally(() => waiting.delete(title));
  };
  const cpu0 = cpuByRole();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await one(next++);
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const spent = cpuSpent(cpu0, cpuByRole());
  const per = (role) => Math.round((1000 * spent[role]) / total) / 1000;
  return { perSecond: Math.round(total / seconds), failed, server: per('server'), postgres: per('postgres'), redis: per('redis'), bench: per('bench') };
}

async function taskUpdatesOn(kind, start, users) {
  const node = await start();
  try {
    const tabs = await openTabs(node.url, users);
    await updates(tabs, users, { total: 500, concurrency: 8 }); // warm-up: code compiled, pools and statements ready
    const r = await updates(tabs, users, { total: 3_000, concurrency: 8 });
    for (const { s } of tabs) s.disconnect();
    console.log(
      `task:update on ${kind} (${users.length} users × ${TABS} tabs, 8 in flight): ${r.perSecond} updates/s, ${r.failed} failed; CPU ms per update: server ${r.server}, PostgreSQL ${r.postgres}, Redis ${r.redis}, this process ${r.bench}`,
    );
    return r;
  } finally {
    await stopNode(node);
  }
}

/** Round-trip times (ms, p50 / p90) of `fn`, back to back and each after `idleMs` of nothing. */
async function roundTrips(fn, idleMs = 5) {
  for (let i = 0; i < 200; i++) await fn(); // warm-up
  const busy = [];
  for (let i = 0; i < 1000; i++) {
    const t = performance.now();
    await fn();
    busy.push(performance.now() - t);
  }
  const idle = [];
  for (let i = 0; i < 300; i++) {
    await new Promise((resolve) => setTimeout(resolve, idleMs));
    const t = performance.now();
    await fn();
    idle.push(performance.now() - t);
  }
  const ms = (values, p) => Math.round(1000 * pct(values, p)) / 1000;
  return `back to back p50 ${ms(busy, 50)} p90 ${ms(busy, 90)} ms; after ${idleMs} ms idle p50 ${ms(idle, 50)} p90 ${ms(idle, 90)} ms`;
}

const ident = runIdentity();
try {
  await migrate(ident);
  countPostgresFor(ident.dbName);
  // The bench's own seeding (one task each); no password is checked here.
  const users = await seedUsers(ident, USERS, 'unused');
  const port = portBelowEphemeralRange();
  const sam = await taskUpdatesOn('Sam', () => startSam(ident, { port, nodeId: 'micro-sam' }), users);
  const bare = await taskUpdatesOn('bare', () => startBare({ port: port + 1, nodeId: 'micro-bare' }), users);
  const serverSide = (r) => r.server + r.postgres + r.redis;
  console.log(`Server-side CPU per update (server + PostgreSQL + Redis): Sam ${serverSide(sam).toFixed(3)} ms, bare ${serverSide(bare).toFixed(3)} ms, ${(serverSide(sam) / serverSide(bare)).toFixed(2)}×`);

  const pgClient = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await pgClient.connect();
  const redis = new Redis({ host: '127.0.0.1', port: 6379 });
  try {
    console.log(`Round trip to PostgreSQL (select 1): ${await roundTrips(() => pgClient.query({ name: 'micro_select_1', text: 'select 1' }))}`);
    console.log(`Round trip to Redis (PING): ${await roundTrips(() => redis.ping())}`);
  } finally {
    await pgClient.end();
    redis.disconnect();
  }
} finally {
  killAll('SIGKILL');
  await cleanup(ident, [ident.redisPrefix]);
}
