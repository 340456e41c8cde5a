/** GET /health (PROTOCOL §4): 200 when PostgreSQL and Redis answer, else 503 naming the failing check. */
import type { RequestHandler } from 'express';
import type { MikroORM } from '@mikro-orm/postgresql';
import { ping, type Sql } from '../../db/postgres.js';
import type { Redis } from '../../redis.js';

type Check = 'ok' | 'down';

async function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function healthCheck(deps: { orm: MikroORM; sql: Sql; redis: Redis }): () => Promise<{ database: Check; redis: Check }> {
  // Both pools: the auth lifecycle's (MikroORM) and the repositories'.
  const database = async () => {
    const [orm] = await Promise.all([deps.orm.checkConnection(), ping(deps.sql)]);
    if (!orm.ok) throw orm.error ?? new Error(orm.reason);
  };
  return async () => {
    const [databaseCheck, redis] = await Promise.all([
      within(database(), 2_000).then(
        () => 'ok' as const,
        () => 'down' as const,
      ),
      within(deps.redis.ping(), 1_500).then(
        () => 'ok' as const,
        () => 'down' as const,
      ),
    ]);
    return { database: databaseCheck, redis };
  };
}

export function healthRoute(check: ReturnType<typeof healthCheck>): RequestHandler {
  return async (_req, res) => {
    const checks = await check();
    const ok = checks.database === 'ok' && checks.redis === 'ok';
    res.setHeader('Cache-Control', 'no-store');
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'degraded', checks });
  };
}
