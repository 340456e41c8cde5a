/**
 * Revocation of sessions (AUTH-7, AUTH-8, AUTH-10).
 *
 * PostgreSQL (`sessions.revoked_at`) is the truth; Redis holds a blacklist key
 * per revoked session for as long as one of its access tokens can live. A
 * marker key says the blacklist is complete: after a Redis flush or restart the
 * marker is gone, so checks go to PostgreSQL until the blacklist is rebuilt.
 * When Redis is unreachable, checks go to PostgreSQL; they never fail open.
 */
import { EventEmitter } from 'node:events';
import { appError, ErrorCode } from '../../errors.js';
import type { Redis, RedisWatch } from '../../redis.js';
import { securityLog, type Logger } from '../../logger.js';
import type { AccessClaims } from './tokens.js';
import { batched } from '../../batch.js';
import type { SessionsRepository } from './sessions.repository.js';
import type { RevocationReason } from '../../../shared/constants.js';

const READY_KEY = 'bl:ready';
const sessionKey = (sid: string) => `bl:sid:${sid}`;

export interface RevokedEvent {
  sessionIds: string[];
  reason: RevocationReason;
}

export interface RevocationStore {
  /**
   * Records in PostgreSQL (already done by the caller's transaction) and
   * blacklists in Redis; emits 'revoked' so live sockets can be closed.
   */
  blacklist(sessionIds: string[], reason: RevocationReason): Promise<void>;
  /** Throws TOKEN_REVOKED when the token's session or user tokens were revoked. */
  assertNotRevoked(claims: AccessClaims): Promise<void>;
  /** Sessions revoked since `since` (from PostgreSQL), with why, for re-delivery after a Redis outage. */
  revokedSince(since: Date): Promise<{ id: string; reason: RevocationReason }[]>;
  readonly events: EventEmitter<{ revoked: [RevokedEvent] }>;
}

export function createRevocationStore(options: {
  sessions: SessionsRepository;
  redis: Redis;
  redisWatch: RedisWatch;
  logger: Logger;
  accessTtlSeconds: number;
}): RevocationStore {
  const { sessions, redis, redisWatch, logger, accessTtlSeconds } = options;
  const ttl = accessTtlSeconds + 5;
  const events = new EventEmitter<{ revoked: [RevokedEvent] }>();
  let warming: Promise<void> | undefined;

  /**
   * The blacklist entry of a session and the marker, in one MGET for every handshake of the same loop turn,
   * or, while handshakes keep coming, of the same 5 ms: at a steady rate of connects a loop turn holds about
   * one, and a batch of one saves nothing (bench/README.md, "Round trips cost more than statements"). An idle
   * node does not wait.
   */
  const blacklistEntry = batched(
    async (sids: string[]) => {
      const values = await redis.mget(...sids.map(sessionKey), READY_KEY);
      const ready = values[sids.length];
      return sids.map((_, i) => ({ entry: values[i], ready }));
    },
    { windowMs: 5 },
  );

  async function checkInDatabase(claims: AccessClaims): Promise<boolean> {
    try {
      return await sessions.isRevoked(claims.sub, claims.sid, claims.iat);
    } catch (err) {
      logger.error({ err }, 'revocation check failed in PostgreSQL');
      throw appError(ErrorCode.UNAVAILABLE, { cause: err });
    }
  }

  /** Rebuilds the blacklist from PostgreSQL, then sets the marker. */
  function warm(): Promise<void> {
    warming ??= (async () => {
      try {
        const rows = await sessions.revokedWithin(ttl);
        const pipeline = redis.multi();
        for (const row of rows) {
          const left = Math.max(1, ttl - Math.floor((Date.now() - row.revokedAt.getTime()) / 1000));
          pipeline.set(sessionKey(row.id), 'revoked', 'EX', left);
        }
        pipeline.set(READY_KEY, new Date().toISOString());
        await pipeline.exec();
        logger.info({ event: 'blacklist', entries: rows.length }, 'revocation blacklist rebuilt from PostgreSQL');
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'could not rebuild the revocation blacklist');
      } finally {
        warming = undefined;
      }
    })();
    return warming;
  }

  return {
    events,
    async blacklist(sessionIds, reason) {
      if (sessionIds.length === 0) return;
      try {
        const pipeline = redis.multi();
        for (const sid of sessionIds) pipeline.set(sessionKey(sid), reason, 'EX', ttl);
        await pipeline.exec();
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'blacklist write failed');
        redisWatch.reportFallback('revocation write');
      }
      securityLog(logger, 'token_revoked', { sessionIds, reason });
      events.emit('revoked', { sessionIds, reason });
    },
    async assertNotRevoked(claims) {
      let revoked: boolean;
      try {
        if (!redisWatch.isUp) throw new Error('redis not ready');
        const { entry, ready } = await blacklistEntry(claims.sid);
        if (entry) revoked = true;
        else if (ready) revoked = false;
        else {
          void warm();
          revoked = await checkInDatabase(claims);
        }
      } catch (err) {
        if ((err as { code?: string }).code === ErrorCode.UNAVAILABLE) throw err;
        redisWatch.reportFallback('token check');
        revoked = await checkInDatabase(claims);
      }
      if (revoked) throw appError(ErrorCode.TOKEN_REVOKED);
    },
    revokedSince(since) {
      return sessions.revokedSince(since);
    },
  };
}
