/**
 * Sessions as the revocation checks see them (AUTH-7, AUTH-8, AUTH-10):
 * PostgreSQL is the truth behind the Redis blacklist. `revokeSessions` marks
 * sessions revoked inside the auth lifecycle's own MikroORM transaction.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Sql } from '../../db/postgres.js';
import type { Role } from '../../../shared/schemas/auth.js';
import { revocationReasons, type RevocationReason } from '../../../shared/constants.js';
import { SessionSchema, RefreshTokenSchema } from './session.entity.js';
import { UserSchema } from './user.entity.js';

export type SessionsRepository = ReturnType<typeof createSessionsRepository>;

export function createSessionsRepository(sql: Sql) {
  return {
    /**
     * Whether a token of `sessionId` issued at `issuedAt` (epoch seconds) is
     * revoked: its session revoked or gone, or every token of the user
     * invalidated after it was issued.
     */
    async isRevoked(userId: string, sessionId: string, issuedAt: number): Promise<boolean> {
      const [row] = await sql<{ revokedAt: Date | null; tokensValidAfter: Date | null }[]>`
        select s.revoked_at, u.tokens_valid_after
          from sessions s join users u on u.id = s.user_id
         where s.id = ${sessionId} and s.user_id = ${userId}`;
      if (!row || row.revokedAt) return true;
      // Whole seconds, as `iat` is: a token issued in the same second is caught by its session instead.
      return row.tokensValidAfter !== null && Math.floor(row.tokensValidAfter.getTime() / 1000) > issuedAt;
    },

    /**
     * What an `/ops` socket's rights rest on, for each of `sessionIds` that still exists: its user's role
     * now, and whether the session was revoked (and why) or is past its absolute expiry.
     */
    access(sessionIds: readonly string[]) {
      return sql<{ id: string; userId: string; role: Role; revokedReason: string | null; revoked: boolean; expired: boolean }[]>`
        select s.id, s.user_id, u.role, s.revoked_reason, s.revoked_at is not null as revoked, s.absolute_expires_at <= now() as expired
          from sessions s join users u on u.id = s.user_id
         where s.id = any(${sessionIds as string[]}::uuid[])`;
    },

    /** The user agent a session signed in with (a socket keeps no HTTP headers after its handshake). */
    async userAgent(sessionId: string): Promise<string | undefined> {
      const [row] = await sql<{ userAgent: string | null }[]>`select user_agent from sessions where id = ${sessionId}`;
      return row?.userAgent ?? undefined;
    },

    /** Sessions revoked within the last `seconds`, with when. */
    revokedWithin(seconds: number) {
      return sql<{ id: string; revokedAt: Date }[]>`select id, revoked_at from sessions where revoked_at > now() - make_interval(secs => ${seconds})`;
    },

    /** The sessions revoked since `since`, with why (a reason outside today's list reads as `session_revoked`). */
    async revokedSince(since: Date): Promise<{ id: string; reason: RevocationReason }[]> {
      const rows = await sql<{ id: string; revokedReason: string | null }[]>`select id, revoked_reason from sessions where revoked_at >= ${since}`;
      const known = new Set<string>(revocationReasons);
      return rows.map((r) => ({ id: r.id, reason: r.revokedReason !== null && known.has(r.revokedReason) ? (r.revokedReason as RevocationReason) : 'session_revoked' }));
    },

    /** How many sessions are open (not revoked), and of how many users: what an operator's `sign-out --all` would end. */
    async openCount(): Promise<{ sessions: number; users: number }> {
      const [row] = await sql<{ sessions: number; users: number }[]>`
        select count(*)::int as sessions, count(distinct user_id)::int as users from sessions where revoked_at is null`;
      return row ?? { sessions: 0, users: 0 };
    },

    /**
     * `revokeSessions(…, 'all', reason)` for every user at once, in one statement (an operator's `sign-out --all`,
     * after a restore from a backup brought back sessions revoked since): every open session revoked, its refresh
     * tokens retired, every access token issued before now invalid. Returns the sessions this call revoked, with
     * their user.
     */
    revokeEverySession(reason: RevocationReason) {
      return sql<{ id: string; userId: string; email: string }[]>`
        with revoked as (
          update sessions set revoked_at = now(), revoked_reason = ${reason} where revoked_at is null returning id, user_id
        ), retired as (
          update refresh_tokens set retired_at = now() where retired_at is null and session_id in (select id from revoked)
        ), invalidated as (
          update users set tokens_valid_after = now()
        )
        select r.id, r.user_id, u.email from revoked r join users u on u.id = r.user_id`;
    },
  };
}

/**
 * Marks sessions of the user revoked and retires their refresh tokens, in
 * `em`'s transaction; `'all'` also invalidates every access token issued
 * before now, `{ except }` leaves that one session alone. Returns the ids of the sessions this call revoked.
 */
export async function revokeSessions(em: EntityManager, userId: string, sessionIds: readonly string[] | 'all' | { except: string }, reason: RevocationReason): Promise<string[]> {
  const now = new Date();
  const open =
    sessionIds === 'all'
      ? { user: userId, revokedAt: null }
      : 'except' in sessionIds
        ? { user: userId, id: { $ne: sessionIds.except }, revokedAt: null }
        : { user: userId, id: { $in: [...sessionIds] }, revokedAt: null };
  const sessions = await em.find(SessionSchema, open, { fields: ['id'], disableIdentityMap: true });
  const ids = sessions.map((s) => s.id);
  if (ids.length > 0) {
    await em.nativeUpdate(SessionSchema, { id: { $in: ids }, revokedAt: null }, { revokedAt: now, revokedReason: reason });
    await em.nativeUpdate(RefreshTokenSchema, { session: { $in: ids }, retiredAt: null }, { retiredAt: now });
  }
  if (sessionIds === 'all') await em.nativeUpdate(UserSchema, { id: userId }, { tokensValidAfter: now });
  return ids;
}
