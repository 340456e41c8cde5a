/**
 * SYNC-1 after a Redis outage. While Redis is away, a node's broadcasts reach
 * its own sockets only (`Broadcaster`), and those published while a node's
 * subscription is down are lost to it: the tabs on the other nodes missed
 * them, and a tab that hears nothing more never sees a gap in `seq` to catch
 * up on. So once a node's link to Redis is back (its subscription, or its
 * command client, whose recovery it also tells the other nodes of), each node
 * closes its sockets that were connected before: their clients reconnect and
 * catch up with `task:sync` and `chat:history`, as after any server-side
 * disconnect (PROTOCOL §8).
 */
import type { Redis } from 'ioredis';
import type { Broadcaster } from './rooms.js';
import type { AppServer } from './types.js';
import type { RedisWatch } from '../redis.js';
import type { Logger } from '../logger.js';
import { whenIdle } from './in-flight.js';

/** Triggers that come together (both links, both nodes) close each socket once. */
const GATHER_MS = 1_000;
/** a socket's events in flight are answered first, for at most this long */
const IN_FLIGHT_MAX_MS = 5_000;

export function startCatchUp(deps: { io: AppServer; sub: Redis; redisWatch: RedisWatch; broadcaster: Broadcaster; logger: Logger }): () => void {
  const { io, sub, redisWatch, broadcaster, logger } = deps;
  let before = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const catchUp = (why: string) => {
    if (stopped) return;
    before = Date.now();
    timer ??= setTimeout(() => {
      timer = undefined;
      let closed = 0;
      for (const socket of io.sockets.sockets.values()) {
        if (socket.handshake.issued >= before) continue;
        closed++;
        void whenIdle(socket, IN_FLIGHT_MAX_MS).then(() => socket.disconnect(true));
      }
      logger.info({ event: 'redis', sockets: closed, why }, 'broadcasts may have been missed; sockets reconnect to catch up');
    }, GATHER_MS);
  };

  let subLost = false;
  const onSubClose = () => {
    subLost = true;
  };
  const onSubReady = () => {
    if (!subLost) return;
    subLost = false;
    catchUp('subscription back');
  };
  sub.on('close', onSubClose);
  sub.on('ready', onSubReady);
  const offWatch = redisWatch.onChange((up) => {
    if (!up) return;
    catchUp('redis back');
    // What this node sent only to its own sockets meanwhile, the other nodes' tabs missed.
    broadcaster.toOtherNodes('sockets:catch-up');
  });
  broadcaster.onNodeEvent('sockets:catch-up', () => catchUp('another node is back'));

  return () => {
    stopped = true;
    clearTimeout(timer);
    sub.off('close', onSubClose);
    sub.off('ready', onSubReady);
    offWatch();
  };
}
