/**
 * Sessions and their refresh tokens (AUTH-6 … AUTH-10): opening one at sign-up
 * and sign-in, the rotation of its refresh token, revocations, and the reads
 * behind the Redis blacklist (PostgreSQL is its truth).
 *
 * The auth lifecycle's writes go through this `postgres` client, not
 * MikroORM's unit of work: `flush()` and `transactional()` run inside an
 * `AsyncLocalStorage`, and on Node 20 its first run makes every promise of the
 * process pay for async hooks from then on (bench/README.md, "Promise hooks").
 */
import type { ISql, Sql } from '../../db/postgres.js';
import { transaction } from '../../db/postgres.js';
import type { Role } from '../../../shared/schemas/auth.js';
import { revocationReasons, type RevocationReason } from '../../../shared/constants.js';

/** A session about to open, with its first refresh token (stored as its hash); the client's details are cut to their columns. */
export interface NewSession {
  id: string;
  userId: string;
  createdAt: Date;
  absoluteExpiresAt: Date;
  userAgent: string | null;
  ip: string | null;
  refreshTokenHash: string;
  refreshExpiresAt: Date;
}

/** A new account's row (the columns sign-up sets; the others keep their defaults). */
export interface NewUser {
  id: string;
  email: string;
  passwordHash: string;
  fullName: string;
  timezone: string;
  createdAt: Date;
}

/** A refresh token as a rotation finds it, its session locked. */
export interface PresentedToken {
  sessionId: string;
  userId: string;
  role: Role;
  absoluteExpiresAt: Date;
  sessionRevoked: boolean;
  expiresAt: Date;
  retiredAt: Date | null;
  graceUsedAt: Date | null;
}

/** What a rotation does with the presented token, as the rule decided. */
export type RotationStep =
  | { kind: 'refuse' }
  /** a replay: the session is revoked (AUTH-6) */
  | { kind: 'revoke' }
  /** `retire`: the presented token's first use; `grace`: a racing request spends its one grace */
  | { kind: 'rotate'; use: 'retire' | 'grace'; childHash: string; childExpiresAt: Date; ip: string | null };

/** Which of a user's sessions a revocation ends. */
export type SessionSelection = readonly string[] | 'all' | { except: string };

export type SessionsRepository = ReturnType<typeof createSessionsRepository>;

/** The widths of `sessions.user_agent` and `sessions.ip`: what a client sends is cut to fit. */
const USER_AGENT_WIDTH = 512;
const IP_WIDTH = 64;
const column = (value: string | null, width: number) => value?.slice(0, width) ?? null;

export function createSessionsRepository(sql: Sql) {
  /** The session and its first refresh token, as statements of one command (run with the others it comes with). */
  const insertSession = (s: NewSession) => sql`
      insert into sessions (id, user_id, created_at, last_used_at, absolute_expires_at, rotations, user_agent, ip)
      values (${s.id}, ${s.userId}, ${s.createdAt}, ${s.createdAt}, ${s.absoluteExpiresAt}, 0, ${column(s.userAgent, USER_AGENT_WIDTH)}, ${column(s.ip, IP_WIDTH)})`;
  const insertToken = (s: NewSession) => sql`
      insert into refresh_tokens (token_hash, session_id, parent_hash, created_at, expires_at)
      values (${s.refreshTokenHash}, ${s.id}, null, ${s.createdAt}, ${s.refreshExpiresAt})`;

  /**
   * Marks the selected open sessions of the user revoked and retires their refresh tokens, in one statement;
   * `'all'` also invalidates every access token issued before `now`. Returns the sessions this call revoked.
   */
  async function revoke(db: ISql, userId: string, which: SessionSelection, reason: RevocationReason, now: Date): Promise<string[]> {
    const all = which === 'all';
    const selected = all
      ? sql``
      : 'except' in which
        ? sql`and id <> ${which.except}`
        : sql`and id = any(${[...which]}::uuid[])`;
    const rows = await db<{ id: string }[]>`
      with revoked as (
        update sessions set revoked_at = ${now}, revoked_reason = ${reason}
         where user_id = ${userId} and revoked_at is null ${selected}
        returning id
      ), retired as (
        update refresh_tokens set retired_at = ${now} where retired_at is null and session_id in (select id from revoked)
      ), invalidated as (
        update users set tokens_valid_after = ${now} where id = ${userId} and ${all}
      )
      select id from revoked`;
    return rows.map((row) => row.id);
  }

  return {
    /**
     * A new account with its first session, in one statement; a taken email fails it with a unique violation
     * (`users_email_unique`).
     */
    async createUser(user: NewUser, session: NewSession): Promise<void> {
      await sql`
        with u as (
          insert into users (id, email, password_hash, full_name, timezone, role, last_login_at, tokens_valid_after, task_seq, created_at, updated_at)
          values (${user.id}, ${user.email}, ${user.passwordHash}, ${user.fullName}, ${user.timezone}, 'user', ${user.createdAt}, null, 0, ${user.createdAt}, ${user.createdAt})
        ), s as (${insertSession(session)}), t as (${insertToken(session)})
        select 1`;
    },

    /** A sign-in: the session opened and the user's last login set, in one statement. */
    async open(session: NewSession): Promise<void> {
      await sql`
        with s as (${insertSession(session)}), t as (${insertToken(session)}),
             u as (update users set last_login_at = ${session.createdAt} where id = ${session.userId})
        select 1`;
    },

    /**
     * AUTH-6: one use of the refresh token whose hash is `tokenHash`, in one transaction that holds its session's
     * row lock (racing uses of one session's tokens take turns): `decide` sees the token as the lock found it
     * (undefined when unknown) and says what to do; the writes leave with the COMMIT. Returns the token as found
     * and the step taken.
     */
    rotate(tokenHash: string, now: Date, decide: (found: PresentedToken | undefined) => RotationStep) {
      return transaction(sql, async (tx) => {
        // Both leave together: the token's row is read after the session's lock is held, so it is what the last
        // holder left.
        const [[locked], [token]] = await Promise.all([
          tx.sql<{ sessionId: string; userId: string; role: Role; absoluteExpiresAt: Date; sessionRevoked: boolean }[]>`
            select s.id as session_id, s.user_id, u.role, s.absolute_expires_at, s.revoked_at is not null as session_revoked
              from sessions s join users u on u.id = s.user_id
             where s.id = (select session_id from refresh_tokens where token_hash = ${tokenHash})
               for update of s`,
          tx.sql<{ sessionId: string; expiresAt: Date; retiredAt: Date | null; graceUsedAt: Date | null }[]>`
            select session_id, expires_at, retired_at, grace_used_at from refresh_tokens where token_hash = ${tokenHash}`,
        ]);
        const found: PresentedToken | undefined =
          locked && token && token.sessionId === locked.sessionId
            ? { ...locked, expiresAt: token.expiresAt, retiredAt: token.retiredAt, graceUsedAt: token.graceUsedAt }
            : undefined;
        const step = decide(found);
        if (!found || step.kind === 'refuse') return { found, step };
        if (step.kind === 'revoke') {
          await revoke(tx.sql, found.userId, [found.sessionId], 'refresh_reuse', now);
          return { found, step };
        }
        tx.atCommit(
          step.use === 'retire'
            ? tx.sql`update refresh_tokens set retired_at = ${now} where token_hash = ${tokenHash}`
            : tx.sql`update refresh_tokens set grace_used_at = ${now} where token_hash = ${tokenHash}`,
          tx.sql`
            insert into refresh_tokens (token_hash, session_id, parent_hash, created_at, expires_at)
            values (${step.childHash}, ${found.sessionId}, ${tokenHash}, ${now}, ${step.childExpiresAt})`,
          tx.sql`
            update sessions set rotations = rotations + 1, last_used_at = ${now}, ip = coalesce(${column(step.ip, IP_WIDTH)}, ip)
             where id = ${found.sessionId}`,
        );
        return { found, step };
      });
    },

    /** Marks sessions of the user revoked (see `revoke`); returns those this call revoked. */
    revokeSessions(userId: string, which: SessionSelection, reason: RevocationReason): Promise<string[]> {
      return revoke(sql, userId, which, reason, new Date());
    },

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
