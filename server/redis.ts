/**
 * Redis connections. The command client fails fast (no offline queue, a command
 * timeout) so that a Redis outage costs a fallback, never a hang (AUTH-10).
 * Every key carries the configured prefix.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from './config.js';
import { securityLog, type Logger } from './logger.js';

export type { Redis };

export function redisOptions(config: Pick<Config, 'redisUrl'>, extra: RedisOptions = {}): RedisOptions {
  return {
    connectTimeout: 2_000,
    // Keep trying to reconnect, at most every 2 s, for as long as the process lives.
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2_000),
    lazyConnect: true,
    ...extra,
  };
}

/**
 * A fail-fast command client with the key prefix. No auto-pipelining: a loop
 * turn carries only a few commands, where an auto-pipeline costs more than
 * the writes it saves, and commands issued while a write is pending already
 * leave together (bench/README.md, "Redis commands").
 */
export function createCommandClient(config: Pick<Config, 'redisUrl' | 'redisPrefix'>, name: string, scripts: RedisOptions['scripts'] = {}): Redis {
  return new Redis(
    config.redisUrl,
    redisOptions(config, {
      connectionName: name,
      // Lua commands are defined with the client, before any command (a pipeline made earlier would not know them).
      scripts,
      keyPrefix: config.redisPrefix,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: 1_000,
      enableReadyCheck: true,
    }),
  );
}

/**
 * Watches a client and writes the security log when Redis goes away and comes
 * back: while it is away, token checks use PostgreSQL and rate limits the
 * per-process limiter.
 */
export class RedisWatch {
  private down = false;
  private lastWarn = 0;
  private readonly listeners = new Set<(up: boolean) => void>();
  private closing = false;

  constructor(
    readonly client: Redis,
    private readonly logger: Logger,
  ) {
    client.on('ready', () => this.setUp(true));
    client.on('close', () => this.setUp(false));
    client.on('end', () => this.setUp(false));
    // ioredis emits 'error' on every failed reconnect; the state above is what matters.
    client.on('error', () => undefined);
  }

  get isUp(): boolean {
    return this.client.status === 'ready';
  }

  /** Notifies `fn(up)` on each transition. */
  onChange(fn: (up: boolean) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Called by code that fell back because of Redis; logs at most every 30 s. */
  reportFallback(context: string): void {
    const now = Date.now();
    if (now - this.lastWarn < 30_000) return;
    this.lastWarn = now;
    securityLog(this.logger, 'blacklist_unavailable', { context, fallback: 'postgresql and per-process rate limits' });
  }

  /** Stops reporting: the process is closing the connection on purpose. */
  close(): void {
    this.closing = true;
    this.listeners.clear();
  }

  private setUp(up: boolean): void {
    if (this.closing || up === !this.down) return;
    this.down = !up;
    if (up) this.logger.info({ event: 'redis', state: 'up' }, 'redis connection restored');
    else {
      this.lastWarn = 0;
      this.reportFallback('connection lost');
    }
    for (const fn of this.listeners) fn(up);
  }
}

/** Connects, waiting at most `timeoutMs`; a failure leaves the client retrying in the background. */
export async function connectRedis(client: Redis, timeoutMs = 3_000): Promise<boolean> {
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('redis connect timeout')), timeoutMs).unref()),
    ]);
    return true;
  } catch {
    return false;
  }
}
