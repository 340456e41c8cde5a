/**
 * Revocation of sessions (AUTH-7, AUTH-8, AUTH-10).
 *
 * PostgreSQL (`sessions.revoked_at`) is the truth; Redis holds a blacklist key
 * per revoked session for as long as one of its access tokens can live. A
 * marker key says the blacklist is complete: after a Redis flush or restart the
 * marker is gone, so checks go to PostgreSQL until the blacklist is rebuilt.
 * When Redis is unreachable, checks go to PostgreSQL; they never fail open.
 *
 * A node also stops trusting the blacklist on its own account (AUTH-8, 1.1):
 * after any write of it that failed or timed out, and after any reconnect
 * (Redis may have come back from an older snapshot, marker included). Until it
 * has rebuilt the blacklist from PostgreSQL, which rewrites the entries that
 * failed, its checks go to PostgreSQL; it retries every second. A failed write
 * also removes the marker, so that the other nodes check PostgreSQL too.
 */
import { EventEmitter } from 'node:events';
import { appError, ErrorCode } from '../../errors.js';
import type { Redis, RedisWatch } from '../../redis.js';
import { securityLog, type Logger } from '../../logger.js';
import type { AccessClaims } from './tokens.js';
import { batched } from '../../batch.js';
import type { SessionsRepository } from './sessions.repository.js';
import type { RevocationReason } from '../../../shared/constants.js';

/** The marker: the blacklist holds every session revoked within an access token's lifetime. */
export const BLACKLIST_READY_KEY = 'bl:ready';
export const blacklistKey = (sid: string) => `bl:sid:${sid}`;
/** How long a blacklist entry lives: as long as an access token issued just before the revocation may (and a margin). */
export const blacklistTtlSeconds = (accessTtlSeconds: number) => accessTtlSeconds + 5;
/** how often a node that distrusts the blacklist tries to rebuild it */
const RETRY_MS = 1_000;

/** What Redis holds of one session: its blacklist entry and the marker, read in one go. */
export interface BlacklistRead {
  entry: string | null;
  ready: string | null;
}

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
  /**
   * Throws TOKEN_REVOKED when the token's session or user tokens were revoked. `read` is the blacklist as a
   * caller read it in a round trip of its own (the socket handshake shares one with other work); by default
   * the store reads it, batched.
   */
  assertNotRevoked(claims: AccessClaims, read?: Promise<BlacklistRead>): Promise<void>;
  /** Sessions revoked since `since` (from PostgreSQL), with why, for re-delivery after a Redis outage. */
  revokedSince(since: Date): Promise<{ id: string; reason: RevocationReason }[]>;
  /** Whether this node trusts Redis's blacklist now (it has re-checked it since its last failure or reconnect). */
  readonly trusted: boolean;
  /**
   * 'revoked' for each revocation; 'recovered' when the node trusts the blacklist again after a failure or
   * reconnect, with the time from which revocations may not have reached every node.
   */
  readonly events: EventEmitter<{ revoked: [RevokedEvent]; recovered: [{ since: Date }] }>;
  close(): void;
}

export function createRevocationStore(options: {
  sessions: SessionsRepository;
  redis: Redis;
  redisWatch: RedisWatch;
  logger: Logger;
  accessTtlSeconds: number;
}): RevocationStore {
  const { sessions, redis, redisWatch, logger, accessTtlSeconds } = options;
  const ttl = blacklistTtlSeconds(accessTtlSeconds);
  const events = new EventEmitter<{ revoked: [RevokedEvent]; recovered: [{ since: Date }] }>();
  /** Not until this node has rebuilt the blacklist from PostgreSQL itself (at startup too). */
  let trusted = false;
  /** when the node stopped trusting the blacklist (for the catch-up of its sockets; none at startup) */
  let distrustedSince: Date | undefined;
  /** bumped by every failure: a rebuild that began before one does not restore trust */
  let failures = 0;
  let rebuilding: Promise<void> | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let closed = false;

  /**
   * The blacklist entry of a session and the marker, in one MGET for every handshake of the same loop turn,
   * or, while handshakes keep coming, of the same 5 ms: at a steady rate of connects a loop turn holds about
   * one, and a batch of one saves nothing (bench/README.md, "Round trips cost more than statements"). An idle
   * node does not wait.
   */
  const blacklistEntry = batched(
    async (sids: string[]) => {
      const values = await redis.mget(...sids.map(blacklistKey), BLACKLIST_READY_KEY);
      const ready = values[sids.length] ?? null;
      return sids.map((_, i): BlacklistRead => ({ entry: values[i] ?? null, ready }));
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

  /** Stops trusting the blacklist until a rebuild that starts after now succeeds. */
  function distrust(): void {
    failures++;
    trusted = false;
    // A moment earlier: a revocation being written as Redis went away may not have crossed either.
    distrustedSince ??= new Date(Date.now() - 5_000);
    scheduleRetry();
  }

  function scheduleRetry(): void {
    if (closed || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      if (!trusted) void rebuild();
    }, RETRY_MS);
    retryTimer.unref();
  }

  /** Rebuilds the blacklist from PostgreSQL (which rewrites any entry whose write failed), then sets the marker. */
  async function rebuildOnce(): Promise<void> {
    const epoch = failures;
    try {
      if (!redisWatch.isUp) throw new Error('redis not ready');
      const rows = await sessions.revokedWithin(ttl);
      const pipeline = redis.multi();
      for (const row of rows) {
        const left = Math.max(1, ttl - Math.floor((Date.now() - row.revokedAt.getTime()) / 1000));
        pipeline.set(blacklistKey(row.id), 'revoked', 'EX', left);
      }
      pipeline.set(BLACKLIST_READY_KEY, new Date().toISOString());
      await execOrThrow(pipeline);
      if (failures !== epoch) {
        scheduleRetry();
        return;
      }
      logger.info({ event: 'blacklist', entries: rows.length }, 'revocation blacklist rebuilt from PostgreSQL');
      if (!trusted) {
        trusted = true;
        const since = distrustedSince;
        distrustedSince = undefined;
        if (since) events.emit('recovered', { since });
      }
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'could not rebuild the revocation blacklist');
      if (!trusted) scheduleRetry();
    }
  }

  /** One rebuild at a time; callers meanwhile share it. */
  function rebuild(): Promise<void> {
    // Cleared once settled, after the assignment: a rebuild that fails at once must not stay "in flight".
    rebuilding ??= rebuildOnce().finally(() => {
      rebuilding = undefined;
    });
    return rebuilding;
  }

  // Redis may come back from an older snapshot, marker included: every reconnect is re-checked.
  const offWatch = redisWatch.onChange((up) => {
    if (!up) distrust();
    else void rebuild();
  });
  // At startup too, before any check asks: Redis may have lost the blacklist (a flush, a restart, a restore of
  // PostgreSQL from a backup onto a fresh Redis), and checks go to PostgreSQL until it is whole again.
  if (redisWatch.isUp) void rebuild();

  return {
    events,
    get trusted() {
      return trusted;
    },
    async blacklist(sessionIds, reason) {
      if (sessionIds.length === 0) return;
      try {
        await writeBlacklist(redis, sessionIds, reason, ttl);
      } catch (err) {
        logger.warn({ err: (err as Error).message, sessionIds }, 'blacklist write failed; checks go to PostgreSQL until it is rebuilt');
        redisWatch.reportFallback('revocation write');
        distrust();
        // The other nodes cannot know of this failure but by the marker: without it they check PostgreSQL.
        redis.del(BLACKLIST_READY_KEY).catch(() => undefined);
      }
      securityLog(logger, 'token_revoked', { sessionIds, reason });
      events.emit('revoked', { sessionIds, reason });
    },
    async assertNotRevoked(claims, read) {
      let revoked: boolean;
      try {
        if (!redisWatch.isUp) {
          read?.catch(() => undefined);
          throw new Error('redis not ready');
        }
        const { entry, ready } = await (read ?? blacklistEntry(claims.sid));
        if (entry) revoked = true;
        else if (ready && trusted) revoked = false;
        else {
          void rebuild();
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
    close() {
      closed = true;
      clearTimeout(retryTimer);
      offWatch();
    },
  };
}

/**
 * Writes the blacklist entries of these sessions in one MULTI, throwing when it failed. The nodes' store, and
 * the operators' `sign-out` (`operator-sessions.ts`), which has no store of its own.
 */
export async function writeBlacklist(redis: Redis, sessionIds: readonly string[], reason: RevocationReason, ttlSeconds: number): Promise<void> {
  const pipeline = redis.multi();
  for (const sid of sessionIds) pipeline.set(blacklistKey(sid), reason, 'EX', ttlSeconds);
  await execOrThrow(pipeline);
}

/** Runs a MULTI, throwing when it or any of its commands failed (EXEC reports a command's error in its reply). */
async function execOrThrow(multi: ReturnType<Redis['multi']>): Promise<void> {
  const results = await multi.exec();
  if (!results) throw new Error('the transaction was discarded');
  const failed = results.find(([err]) => err);
  if (failed) throw failed[0];
}
