// `npm run bench:micro`: socket-free measurements of the hot paths that the
// bench's profiles pointed at, each in this one process (CPU from process.cpuUsage):
//   1. tasks.update through the real service on a fresh database: updates/s and CPU per update;
//   2. Redis commands issued a few per loop turn, with and without `autoCork`;
//   3. a streamed answer read through the Anthropic SDK, 100 at once, with the global fetch (undici)
//      and with Sam's upstream fetch (node:http): CPU per SSE event, from the bench's fake upstream
//      (its own process) at 50 tokens/s;
//   4. the round trip to PostgreSQL (`select 1`) and to Redis (PING), back to back and after 5 ms with
//      nothing to do: on this kind of VM a peer that has gone idle takes far longer to answer, and a
//      task change at low load makes three round trips (the rate limit, then two to PostgreSQL).
// Needs the built server (`npm run build:server`), PostgreSQL and Redis as for `npm run bench`.
import { randomBytes, randomUUID } from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createOrm, ensureDatabase, migrate } from '../dist/server/db/orm.js';
import { createSqlPool } from '../dist/server/db/sql.js';
import { createTasksService } from '../dist/server/features/tasks/tasks.service.js';
import { autoCork } from '../dist/server/redis.js';
import { createUpstreamFetch } from '../dist/server/features/chat/upstream-fetch.js';
import { pct } from './lib.mjs';
import { cleanup, cpuByRole, cpuSpent, runIdentity, seedUsers, startUpstream } from './servers.mjs';

const cpuMs = (since) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};

async function taskUpdates({ users = 50, total = 3000, concurrency = 8 } = {}) {
  const ident = runIdentity();
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/${ident.dbName}`;
  await ensureDatabase(databaseUrl);
  const orm = await createOrm({ databaseUrl });
  try {
    await migrate(orm);
    const service = createTasksService({ sql: createSqlPool(orm), events: { changed() {}, removed() {} } });
    // The bench's own seeding: users with one task each (no password is checked here).
    const pool = await seedUsers(ident, users, 'unused');
    const run = async (n) => {
      let next = 0;
      const cpu0 = process.cpuUsage();
      const roles0 = cpuByRole();
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < n) {
            const i = next++;
            const u = pool[i % pool.length];
            await service.update(u.userId, { id: u.taskId, patch: { title: `t${i}` } });
          }
        }),
      );
      const pgMs = cpuSpent(roles0, cpuByRole()).postgres;
      return { perSecond: Math.round((n * 1000) / (performance.now() - t0)), cpuMsPerUpdate: Math.round((1000 * cpuMs(cpu0)) / n) / 1000, postgresMsPerUpdate: Math.round((1000 * pgMs) / n) / 1000 };
    };
    await run(500); // warm-up: JIT, pool connections, prepared statements
    return { concurrency, ...(await run(total)) };
  } finally {
    await orm.close(true);
    await cleanup(ident, []);
  }
}

async function redisCommands(perTurn, cork, total = 20_000) {
  const client = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, keyPrefix: `sam-micro-${randomBytes(4).toString('hex')}:` });
  if (cork) autoCork(client);
  await client.connect();
  try {
    const turn = async () => {
      await new Promise((resolve) => setImmediate(resolve));
      await Promise.all(Array.from({ length: perTurn }, () => client.incr('n')));
    };
    for (let i = 0; i < 200; i++) await turn(); // warm-up
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < total / perTurn; i++) await turn();
    return Math.round((10_000 * cpuMs(cpu0)) / total) / 10; // µs per command
  } finally {
    await client.del('n');
    client.disconnect();
  }
}

/** µs of this process's CPU per SSE event, reading `streams` streamed answers at once through the SDK. */
async function upstreamReads(fetchImpl, url, streams = 100) {
  const client = new Anthropic({ apiKey: randomUUID(), baseURL: url, maxRetries: 0, ...(fetchImpl ? { fetch: fetchImpl } : {}) });
  const read = async () => {
    let events = 0;
    // `[bench:…]` makes the fake upstream stream its fixed text at 50 tokens/s
    for await (const _ of await client.messages.create({ model: 'm', max_tokens: 100, messages: [{ role: 'user', content: '[bench:micro]' }], stream: true })) events++;
    return events;
  };
  await Promise.all(Array.from({ length: streams }, read)); // warm-up
  const cpu0 = process.cpuUsage();
  const events = (await Promise.all(Array.from({ length: streams }, read))).reduce((a, b) => a + b, 0);
  return Math.round((10 * 1000 * cpuMs(cpu0)) / events) / 10;
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

const updates = await taskUpdates();
console.log(`tasks.update (concurrency ${updates.concurrency}): ${updates.perSecond} updates/s, ${updates.cpuMsPerUpdate} ms CPU per update in this process, ${updates.postgresMsPerUpdate} ms in PostgreSQL`);
for (const perTurn of [1, 5, 20]) {
  const plain = await redisCommands(perTurn, false);
  const corked = await redisCommands(perTurn, true);
  console.log(`Redis, ${perTurn} command(s) per loop turn: ${plain} µs CPU per command plain, ${corked} µs with autoCork`);
}
const upstream = await startUpstream(640); // 160 deltas an answer
try {
  const ours = createUpstreamFetch();
  for (let i = 0; i < 2; i++) {
    const undici = await upstreamReads(undefined, upstream.url);
    const node = await upstreamReads(ours.fetch, upstream.url);
    console.log(`Streamed answers read through the SDK, 100 at once: ${undici} µs CPU per event with the global fetch, ${node} µs with the upstream fetch (node:http)`);
  }
  ours.close();
} finally {
  upstream.child.kill();
}

{
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
}
