// `npm run bench:micro`: socket-free measurements of the hot paths that the
// bench's profiles pointed at, each in this one process (CPU from process.cpuUsage):
//   1. tasks.update through the real service on a fresh database: updates/s and CPU per update;
//   2. Redis commands issued a few per loop turn, with and without `autoCork`.
// Needs the built server (`npm run build:server`), PostgreSQL and Redis as for `npm run bench`.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createOrm, ensureDatabase, migrate } from '../dist/server/db/orm.js';
import { createSqlPool } from '../dist/server/db/sql.js';
import { createTasksService } from '../dist/server/features/tasks/tasks.service.js';
import { autoCork } from '../dist/server/redis.js';
import { cleanup, cpuByRole, cpuSpent, runIdentity, seedUsers } from './servers.mjs';

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

const updates = await taskUpdates();
console.log(`tasks.update (concurrency ${updates.concurrency}): ${updates.perSecond} updates/s, ${updates.cpuMsPerUpdate} ms CPU per update in this process, ${updates.postgresMsPerUpdate} ms in PostgreSQL`);
for (const perTurn of [1, 5, 20]) {
  const plain = await redisCommands(perTurn, false);
  const corked = await redisCommands(perTurn, true);
  console.log(`Redis, ${perTurn} command(s) per loop turn: ${plain} µs CPU per command plain, ${corked} µs with autoCork`);
}
