/**
 * The operators' sign-out and disconnect (PROTOCOL §3a, additions), for the
 * command line, which has no HTTP server and no sockets of its own. A sign-out
 * revokes as AUTH-7 does for "all" (PostgreSQL first, then the Redis
 * blacklist); the sockets of every node are told and closed through a
 * headless Socket.IO server on the nodes' Redis adapter, by the nodes' own
 * `Broadcaster` (RT-5, RT-7).
 */
import { Server } from 'socket.io';
import type { Namespace } from 'socket.io';
import type { Config } from '../../config.js';
import { connectRedis, createCommandClient } from '../../redis.js';
import { securityLog, type Logger } from '../../logger.js';
import { Broadcaster } from '../../realtime/rooms.js';
import { createRedisAdapter } from '../../realtime/adapter.js';
import type { AppServer } from '../../realtime/types.js';
import { OPS_NAMESPACE } from '../ops/ops-namespace.js';
import { BLACKLIST_READY_KEY, blacklistTtlSeconds, writeBlacklist } from './revocation.js';
import type { SessionsRepository } from './sessions.repository.js';
import type { RevocationReason } from '../../../shared/constants.js';

/** The reason the users' tabs hear (RT-5): an operator's sign-out is an admin's `ops:revoke-user` by other means. */
export const OPERATOR_REVOCATION: RevocationReason = 'admin_revoked';
/** blacklist entries per MULTI when every session is revoked at once */
const BLACKLIST_BATCH = 1_000;

export interface OperatorSessions {
  /** Revokes every session of the user and closes their sockets on every node; returns the sessions revoked. */
  signOut(userId: string): Promise<string[]>;
  /** Revokes every open session of every user and closes every socket of every node; returns the sessions revoked. */
  signOutEveryone(): Promise<{ id: string; userId: string; email: string }[]>;
  /** Closes the user's sockets on every node, revoking nothing. */
  disconnect(userId: string): Promise<void>;
  close(): Promise<void>;
}

/** Connects to Redis (PostgreSQL is the caller's `sessions`); throws, having changed nothing, when Redis is unreachable. */
export async function openOperatorSessions(
  config: Readonly<Config>,
  deps: { sessions: Pick<SessionsRepository, 'revokeSessions' | 'revokeEverySession'>; logger: Logger },
): Promise<OperatorSessions> {
  const { logger } = deps;
  const name = `${config.nodeId}:cli`;
  const redis = createCommandClient(config, `sam:${name}:cmd`);
  redis.on('error', () => undefined);
  const adapter = createRedisAdapter(config, name);
  if (!(await connectRedis(redis)) || !(await adapter.connected(3_000))) {
    redis.disconnect();
    await adapter.close();
    throw new Error('Redis (REDIS_URL) is unreachable: nothing was changed; the nodes could not be told');
  }
  // No listener: this server only publishes to the nodes' rooms through the adapter.
  const io: AppServer = new Server({ serveClient: false });
  io.adapter(adapter.adapter);
  const broadcaster = new Broadcaster();
  broadcaster.addNamespace(io.of(OPS_NAMESPACE) as unknown as Namespace);
  broadcaster.attach(io);
  const ttl = blacklistTtlSeconds(config.accessTokenTtlSeconds);

  /** As the nodes' store does, batched; after a failed write the marker goes, so that every node checks PostgreSQL. */
  async function blacklist(sessionIds: readonly string[]): Promise<void> {
    try {
      for (let i = 0; i < sessionIds.length; i += BLACKLIST_BATCH) {
        await writeBlacklist(redis, sessionIds.slice(i, i + BLACKLIST_BATCH), OPERATOR_REVOCATION, ttl);
      }
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'blacklist write failed; the nodes check PostgreSQL until one rebuilds it');
      // When even this fails, so does the command: the nodes might go on trusting a blacklist without these sessions.
      await redis.del(BLACKLIST_READY_KEY);
    }
  }

  return {
    async signOut(userId) {
      const ids = await deps.sessions.revokeSessions(userId, 'all', OPERATOR_REVOCATION);
      await blacklist(ids);
      securityLog(logger, 'token_revoked', { sessionIds: ids, reason: OPERATOR_REVOCATION });
      await broadcaster.disconnectSessions(ids, OPERATOR_REVOCATION);
      return ids;
    },
    async signOutEveryone() {
      const revoked = await deps.sessions.revokeEverySession(OPERATOR_REVOCATION);
      await blacklist(revoked.map((r) => r.id));
      securityLog(logger, 'token_revoked', { sessions: revoked.length, reason: OPERATOR_REVOCATION });
      await broadcaster.disconnectEveryone(OPERATOR_REVOCATION);
      return revoked;
    },
    async disconnect(userId) {
      broadcaster.disconnectUser(userId);
    },
    async close() {
      broadcaster.detach();
      await Promise.allSettled([adapter.close(), redis.quit()]);
    },
  };
}
