/**
 * The Redis adapter (RT-7) through which a node's broadcasts, and the operators'
 * command line's, reach the sockets of every node: one configuration, so that
 * they all publish and listen on the same channels.
 */
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { redisOptions } from '../redis.js';

export interface RedisAdapter {
  adapter: ReturnType<typeof createAdapter>;
  /** the subscribing connection: a node watches it to catch its sockets up after it was away (`catch-up.ts`) */
  subscriber: Redis;
  /** Resolves whether the publishing connection is up, waiting at most `timeoutMs` for it. */
  connected(timeoutMs: number): Promise<boolean>;
  /** Closes both connections once what waits to be published is sent. */
  close(): Promise<void>;
}

/** `name` names the connections in Redis (`sam:<name>:pub`, `sam:<name>:sub`). */
export function createRedisAdapter(config: Pick<Config, 'redisUrl' | 'redisPrefix'>, name: string): RedisAdapter {
  // Each broadcast is a PUBLISH. The adapter does not await its publishes, so while Redis is away they wait in
  // the offline queue instead of failing (`maxRetriesPerRequest: null`).
  const pub = new Redis(config.redisUrl, redisOptions(config, { connectionName: `sam:${name}:pub`, lazyConnect: false, maxRetriesPerRequest: null }));
  const sub = pub.duplicate({ connectionName: `sam:${name}:sub` });
  pub.on('error', () => undefined);
  sub.on('error', () => undefined);
  return {
    adapter: createAdapter(pub, sub, { key: `${config.redisPrefix}socket.io`, requestsTimeout: 3_000 }),
    subscriber: sub,
    connected(timeoutMs) {
      if (pub.status === 'ready') return Promise.resolve(true);
      return new Promise((resolve) => {
        const done = (up: boolean) => {
          clearTimeout(timer);
          pub.off('ready', onReady);
          resolve(up);
        };
        const onReady = () => done(true);
        const timer = setTimeout(() => done(false), timeoutMs);
        pub.once('ready', onReady);
      });
    },
    async close() {
      // QUIT queues behind the adapter's pending publishes and unsubscribes, so none of them is lost or left rejected.
      await Promise.allSettled([pub.quit(), sub.quit()]);
    },
  };
}
