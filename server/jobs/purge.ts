/**
 * TASK-4: completed and deleted tasks older than 7 days are purged every hour,
 * by one node at a time (a Redis lock with a TTL, released by its holder only).
 * AUTH-18: so are security log entries older than 400 days, with login
 * challenges and reset tokens that can no longer be used.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../logger.js';
import type { Redis } from '../redis.js';
import type { TasksService } from '../features/tasks/tasks.service.js';
import type { SecurityRepository } from '../features/security/security.repository.js';

/** AUTH-18: how long the security log keeps an entry. */
export const SECURITY_LOG_KEEP_DAYS = 400;

interface PurgeDeps {
  redis: Redis;
  tasks: TasksService;
  /** the security log and its kin; absent, only tasks are purged */
  security?: Pick<SecurityRepository, 'purge'>;
  logger: Logger;
}

const LOCK_KEY = 'lock:purge';

const releaseScript = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;

/** Runs the purge once if this node gets the lock; returns the count purged, or null when another node holds it. */
export async function runPurgeOnce(deps: PurgeDeps, lockMs = 10 * 60_000): Promise<number | null> {
  const token = randomUUID();
  const got = await deps.redis.set(LOCK_KEY, token, 'PX', lockMs, 'NX');
  if (got !== 'OK') return null;
  try {
    const purged = await deps.tasks.purgeExpired();
    if (purged > 0) deps.logger.info({ job: 'purge', purged }, 'purged old completed and deleted tasks');
    if (deps.security) {
      const security = await deps.security.purge(SECURITY_LOG_KEEP_DAYS);
      if (security.events + security.challenges + security.resetTokens > 0) deps.logger.info({ job: 'purge', ...security }, 'purged old security records');
    }
    return purged;
  } finally {
    await deps.redis.eval(releaseScript, 1, LOCK_KEY, token).catch(() => undefined);
  }
}

export function startPurgeJob(deps: PurgeDeps, intervalMs = 60 * 60_000): () => void {
  const tick = () =>
    runPurgeOnce(deps).catch((err: unknown) => deps.logger.warn({ err: (err as Error).message, job: 'purge' }, 'purge job failed'));
  // First run a little after start, so that a fleet restarting together spreads out.
  const first = setTimeout(tick, 30_000 + Math.random() * 30_000);
  const every = setInterval(tick, intervalMs);
  first.unref();
  every.unref();
  return () => {
    clearTimeout(first);
    clearInterval(every);
  };
}
