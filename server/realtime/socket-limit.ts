/**
 * RT-8: at most `max` sockets per user across every node, in the handshake's
 * one Redis call.
 *
 * Each node instance knows its own count of each user's sockets exactly (the
 * ones connected and the ones being let in). Redis holds, per user, a hash of
 * each live instance's count; an instance that stops beating (`sockets:live`)
 * is left out, so a node that died does not hold its users' places. A
 * handshake reads the session's blacklist entry and the marker (AUTH-8) and
 * asks for a place in the same script, for every handshake of the batch: one
 * round trip, as the blacklist read alone was. Letting a socket in writes this
 * instance's new count in that script; a socket that leaves, or a handshake
 * refused afterwards, writes it again, batched per loop turn and not awaited.
 * While Redis is away each node counts its own sockets only, and writes its
 * counts again when Redis returns.
 */
import { randomUUID } from 'node:crypto';
import type { Redis, RedisWatch } from '../redis.js';
import { batched, type BatchOptions } from '../batch.js';
import { BLACKLIST_READY_KEY, blacklistKey, type BlacklistRead } from '../features/auth/revocation.js';

const LIVE_KEY = 'sockets:live';
const userKey = (userId: string) => `sockets:${userId}`;
/** an instance unheard of for this long no longer counts */
const LIVE_MS = 10_000;
const BEAT_MS = 2_000;
/** a user's hash outlives their last change by this much */
const USER_KEY_TTL_MS = 86_400_000;

/**
 * How the handshakes' lookups are batched: this Redis script, and the user rows the gateway reads beside it (the
 * same setting, as a handshake waits for both). While connects keep coming, a lone lookup waits a little for
 * company (`windowMs`) and batches are spaced (`spacing`), so that a batch carries a window's handshakes rather
 * than a round trip's: each round trip costs the server, PostgreSQL and Redis more than the rows it carries
 * (bench/README.md, "Handshake batching"). An idle node does not wait.
 */
export const handshakeBatching: BatchOptions = { windowMs: 5, spacing: { ms: 10, below: 32 } };

/**
 * KEYS: the marker, the live instances, then for each handshake its session's blacklist key and its user's
 * hash. ARGV: this instance, the limit, live-since (ms), the hash TTL (ms), then for each handshake this
 * instance's count of the user's sockets with it. Replies the marker, then for each handshake its blacklist
 * entry and 1 when it was let in (its count written), else 0. A revoked session takes no place.
 */
const handshakeScript = `
local instance, max, liveSince, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local reply = { redis.call('GET', KEYS[1]) }
for i = 1, (#KEYS - 2) / 2 do
  local entry = redis.call('GET', KEYS[1 + 2 * i])
  local users = KEYS[2 + 2 * i]
  local mine = tonumber(ARGV[4 + i])
  local admitted = 0
  if not entry then
    local total = mine
    local fields = redis.call('HGETALL', users)
    for f = 1, #fields, 2 do
      local other = fields[f]
      if other ~= instance then
        local seen = redis.call('ZSCORE', KEYS[2], other)
        if seen and tonumber(seen) >= liveSince then
          total = total + tonumber(fields[f + 1])
        else
          redis.call('HDEL', users, other)
        end
      end
    end
    if total <= max then
      redis.call('HSET', users, instance, mine)
      redis.call('PEXPIRE', users, ttl)
      admitted = 1
    end
  end
  reply[#reply + 1] = entry
  reply[#reply + 1] = admitted
end
return reply
`;

/** Defined with the command client, before any command (like the stream scripts). */
export const socketLimitScripts = { samHandshake: { lua: handshakeScript } };

type WithHandshake = Redis & { samHandshake(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<(string | number | null)[]> };

/** One handshake's Redis answers, from the script it shared with its batch. */
export interface HandshakeCheck {
  /** the session's blacklist entry and the marker, for the revocation check */
  blacklist: Promise<BlacklistRead>;
  /** whether the user has a place for this socket (counted as this node's from now on); never rejects */
  admitted: Promise<boolean>;
  /** Gives the place back, if it had one: the handshake failed after all, or the socket went away. Once only. */
  release(): void;
}

export interface SocketLimit {
  /** One handshake's blacklist read and its request for a place, in the batch's one Redis call. */
  check(sessionId: string, userId: string): HandshakeCheck;
  close(): Promise<void>;
}

export function createSocketLimit(options: { redis: Redis; redisWatch: RedisWatch; nodeId: string; max: number }): SocketLimit {
  const redis = options.redis as WithHandshake;
  const { redisWatch, max } = options;
  // A node restarted under the same NODE_ID must not inherit its former self's counts.
  const instance = `${options.nodeId}/${randomUUID().slice(0, 8)}`;
  const local = new Map<string, number>();
  const dirty = new Set<string>();
  let flushing: NodeJS.Immediate | undefined;

  const probe = batched(
    async (items: { sessionId: string; userId: string; count: number }[]) => {
      const keys = [BLACKLIST_READY_KEY, LIVE_KEY, ...items.flatMap((h) => [blacklistKey(h.sessionId), userKey(h.userId)])];
      const args = [instance, max, Date.now() - LIVE_MS, USER_KEY_TTL_MS, ...items.map((h) => h.count)];
      const reply = await redis.samHandshake(keys.length, ...keys, ...args);
      const ready = (reply[0] as string | null) ?? null;
      return items.map((_, i) => ({ entry: (reply[1 + 2 * i] as string | null) ?? null, ready, admitted: reply[2 + 2 * i] === 1 }));
    },
    handshakeBatching,
  );

  function change(userId: string, by: number): number {
    const count = (local.get(userId) ?? 0) + by;
    if (count > 0) local.set(userId, count);
    else local.delete(userId);
    return count;
  }

  /** Writes the counts of the users changed in this loop turn, in one pipeline; not awaited by anyone. */
  function markDirty(userId: string): void {
    dirty.add(userId);
    flushing ??= setImmediate(flush);
  }

  function flush(): void {
    flushing = undefined;
    if (dirty.size === 0 || !redisWatch.isUp) return;
    const users = [...dirty];
    dirty.clear();
    const pipeline = redis.pipeline();
    for (const userId of users) {
      const count = local.get(userId) ?? 0;
      if (count > 0) pipeline.hset(userKey(userId), instance, count).pexpire(userKey(userId), USER_KEY_TTL_MS);
      else pipeline.hdel(userKey(userId), instance);
    }
    pipeline.exec().catch(() => {
      // Written again when Redis returns.
      for (const userId of users) dirty.add(userId);
    });
  }

  function beat(): void {
    const now = Date.now();
    redis
      .multi()
      .zadd(LIVE_KEY, now, instance)
      .zremrangebyscore(LIVE_KEY, '-inf', now - USER_KEY_TTL_MS)
      .exec()
      .catch(() => undefined);
  }
  const beating = setInterval(beat, BEAT_MS);
  beating.unref();
  beat();

  // Back from an outage (or a Redis that lost our counts): say again what this instance holds.
  const offWatch = redisWatch.onChange((up) => {
    if (!up) return;
    beat();
    for (const userId of local.keys()) dirty.add(userId);
    flush();
  });

  return {
    check(sessionId, userId) {
      const count = change(userId, 1);
      const answer = probe({ sessionId, userId, count });
      const admitted = answer.then(
        (a) => a.admitted,
        () => {
          // Redis cannot say: this node's own count decides, and is written when Redis returns.
          markDirty(userId);
          return count <= max;
        },
      );
      // Refused: the script wrote nothing, so there is nothing to write back.
      const counted = admitted.then((ok) => {
        if (!ok) change(userId, -1);
        return ok;
      });
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        void counted.then((ok) => {
          if (!ok) return;
          change(userId, -1);
          markDirty(userId);
        });
      };
      return {
        blacklist: answer.then(({ entry, ready }) => ({ entry, ready })),
        admitted: counted,
        release,
      };
    },
    async close() {
      clearInterval(beating);
      offWatch();
      if (flushing) clearImmediate(flushing);
      // The other nodes stop counting this instance's sockets at once.
      await redis.zrem(LIVE_KEY, instance).catch(() => undefined);
    },
  };
}
