/**
 * SQL of account security (PROTOCOL §3b): the two-factor columns of `users`,
 * recovery codes, login challenges, password-reset tokens, the security log
 * and the mail outbox. Secrets arrive sealed or hashed; nothing here sees a
 * plain code, token or TOTP secret.
 */
import { randomUUID } from 'node:crypto';
import type { postgres, Sql } from '../../db/postgres.js';
import type { SecurityLogType } from '../../../shared/constants.js';

/** The user as the two-factor and password rules need them. */
export interface SecurityUserRow {
  id: string;
  email: string;
  passwordHash: string;
  mfaSecret: string | null;
  mfaPendingSecret: string | null;
  mfaEnabledAt: Date | null;
}

export interface SecurityEventRow {
  at: Date;
  type: SecurityLogType;
  ip: string | null;
  userAgent: string | null;
  device: string | null;
}

export interface NewSecurityEvent {
  at: Date;
  userId: string | null;
  email: string | null;
  type: SecurityLogType;
  ip: string | null;
  userAgent: string | null;
  device: string | null;
  network: string | null;
  details: Record<string, unknown> | null;
}

export interface OutboxRow {
  id: string;
  recipient: string;
  subject: string;
  body: string;
  attempts: number;
}

export type SecurityRepository = ReturnType<typeof createSecurityRepository>;

export function createSecurityRepository(sql: Sql) {
  return {
    async user(userId: string): Promise<SecurityUserRow | undefined> {
      const [row] = await sql<SecurityUserRow[]>`
        select id, email, password_hash, mfa_secret, mfa_pending_secret, mfa_enabled_at from users where id = ${userId}`;
      return row;
    },

    async userByEmail(email: string): Promise<SecurityUserRow | undefined> {
      const [row] = await sql<SecurityUserRow[]>`
        select id, email, password_hash, mfa_secret, mfa_pending_secret, mfa_enabled_at from users where email = ${email}`;
      return row;
    },

    /** A new pending secret replaces any earlier one (`mfa:setup`). */
    async setPendingSecret(userId: string, sealed: string): Promise<void> {
      await sql`update users set mfa_pending_secret = ${sealed}, updated_at = now() where id = ${userId}`;
    },

    /**
     * AUTH-13: records `step` as used when it is later than the last used one; false when it is not (the
     * code, or a later one, was already accepted). One statement, so two nodes cannot both accept a code.
     */
    async useStep(userId: string, step: number): Promise<boolean> {
      const rows = await sql`update users set mfa_last_step = ${step} where id = ${userId} and (mfa_last_step is null or mfa_last_step < ${step}) returning id`;
      return rows.length > 0;
    },

    /** Spends one unused recovery code of the user; false when it is unknown or spent. */
    async useRecoveryCode(userId: string, codeHash: string): Promise<boolean> {
      const rows = await sql`
        update recovery_codes set used_at = now()
         where id = (select id from recovery_codes where user_id = ${userId} and code_hash = ${codeHash} and used_at is null limit 1)
           and used_at is null
        returning id`;
      return rows.length > 0;
    },

    /**
     * Turns two-factor on with the pending secret `expectedPending` (unless another setup replaced it since:
     * then false), with `step` used and `codeHashes` as the only recovery codes.
     */
    async enable(userId: string, expectedPending: string, step: number, codeHashes: string[]): Promise<boolean> {
      return sql.begin(async (tx) => {
        const rows = await tx`
          update users set mfa_secret = mfa_pending_secret, mfa_pending_secret = null, mfa_enabled_at = now(), mfa_last_step = ${step}, updated_at = now()
           where id = ${userId} and mfa_pending_secret = ${expectedPending} and mfa_enabled_at is null
          returning id`;
        if (rows.length === 0) return false;
        await replaceCodes(tx, userId, codeHashes);
        return true;
      });
    },

    async disable(userId: string): Promise<void> {
      await sql.begin(async (tx) => {
        await tx`update users set mfa_secret = null, mfa_pending_secret = null, mfa_enabled_at = null, mfa_last_step = null, updated_at = now() where id = ${userId}`;
        await tx`delete from recovery_codes where user_id = ${userId}`;
      });
    },

    async replaceRecoveryCodes(userId: string, codeHashes: string[]): Promise<void> {
      await sql.begin((tx) => replaceCodes(tx, userId, codeHashes));
    },

    async setPasswordHash(userId: string, passwordHash: string): Promise<void> {
      await sql`update users set password_hash = ${passwordHash}, updated_at = now() where id = ${userId}`;
    },

    // ------------------------------------------------------------ login challenges (AUTH-13)

    async createChallenge(challengeHash: string, userId: string, expiresAt: Date): Promise<void> {
      await sql`insert into mfa_challenges (challenge_hash, user_id, created_at, expires_at) values (${challengeHash}, ${userId}, now(), ${expiresAt})`;
    },

    /** The user of a challenge that is neither used nor expired. */
    async openChallenge(challengeHash: string): Promise<{ userId: string; email: string } | undefined> {
      const [row] = await sql<{ userId: string; email: string }[]>`
        select c.user_id, u.email from mfa_challenges c join users u on u.id = c.user_id
         where c.challenge_hash = ${challengeHash} and c.used_at is null and c.expires_at > now()`;
      return row;
    },

    /** Uses the challenge up; false when it was used or expired meanwhile. */
    async consumeChallenge(challengeHash: string): Promise<boolean> {
      const rows = await sql`update mfa_challenges set used_at = now() where challenge_hash = ${challengeHash} and used_at is null and expires_at > now() returning challenge_hash`;
      return rows.length > 0;
    },

    // ------------------------------------------------------------ password reset (AUTH-16, AUTH-17)

    /** A new link for the user; every older unused one stops working. */
    async createResetToken(tokenHash: string, userId: string, expiresAt: Date): Promise<void> {
      await sql.begin(async (tx) => {
        await tx`update password_reset_tokens set used_at = now() where user_id = ${userId} and used_at is null`;
        await tx`insert into password_reset_tokens (token_hash, user_id, created_at, expires_at) values (${tokenHash}, ${userId}, now(), ${expiresAt})`;
      });
    },

    /** The user of a token that is neither used nor expired. */
    async openResetToken(tokenHash: string): Promise<string | undefined> {
      const [row] = await sql<{ userId: string }[]>`select user_id from password_reset_tokens where token_hash = ${tokenHash} and used_at is null and expires_at > now()`;
      return row?.userId;
    },

    /**
     * Uses the token and sets the password in one transaction; every other link of the user stops working.
     * The user's id and email, or undefined when the token was used or expired meanwhile.
     */
    async resetPassword(tokenHash: string, passwordHash: string): Promise<{ id: string; email: string } | undefined> {
      return sql.begin(async (tx) => {
        const [token] = await tx<{ userId: string }[]>`
          update password_reset_tokens set used_at = now() where token_hash = ${tokenHash} and used_at is null and expires_at > now() returning user_id`;
        if (!token) return undefined;
        await tx`update password_reset_tokens set used_at = now() where user_id = ${token.userId} and used_at is null`;
        const [user] = await tx<{ id: string; email: string }[]>`
          update users set password_hash = ${passwordHash}, updated_at = now() where id = ${token.userId} returning id, email`;
        return user;
      });
    },

    /** A password change makes every link sent before it void. */
    async voidResetTokens(userId: string): Promise<void> {
      await sql`update password_reset_tokens set used_at = now() where user_id = ${userId} and used_at is null`;
    },

    // ------------------------------------------------------------ the security log (AUTH-18)

    async insertEvents(events: readonly NewSecurityEvent[]): Promise<void> {
      if (events.length === 0) return;
      const rows = events.map((e) => ({
        id: randomUUID(),
        at: e.at,
        user_id: e.userId,
        email: e.email,
        type: e.type,
        ip: e.ip,
        user_agent: e.userAgent,
        device: e.device,
        network: e.network,
        details: e.details === null ? null : sql.json(e.details as Parameters<Sql['json']>[0]),
      }));
      await sql`insert into security_events ${sql(rows)}`;
    },

    /** The user's entries older than `before`, newest first: `limit` of them and whether there are more. */
    async page(userId: string, before: Date | undefined, limit: number): Promise<{ events: SecurityEventRow[]; hasMore: boolean }> {
      const rows = await sql<SecurityEventRow[]>`
        select at, type, ip, user_agent, device from security_events
         where user_id = ${userId} ${before ? sql`and at < ${before}` : sql``}
         order by at desc, id desc limit ${limit + 1}`;
      return { events: rows.slice(0, limit), hasMore: rows.length > limit };
    },

    /** Operators' view (`admin security-log`): every entry, or those of one email, newest first. */
    operatorPage(email: string | undefined, limit: number) {
      return sql<(SecurityEventRow & { email: string | null; userId: string | null; details: Record<string, unknown> | null })[]>`
        select e.at, e.type, e.ip, e.user_agent, e.device, coalesce(u.email, e.email) as email, e.user_id, e.details
          from security_events e left join users u on u.id = e.user_id
         ${email === undefined ? sql`` : sql`where e.email = ${email} or u.email = ${email}`}
         order by e.at desc, e.id desc limit ${limit}`;
    },

    /** Whether the user has signed in before at all, and from this device and network. */
    async signInsFrom(userId: string, device: string | null, network: string | null, beforeAt: Date): Promise<{ any: boolean; same: boolean }> {
      const [row] = await sql<{ any: boolean; same: boolean }[]>`
        select exists(select 1 from security_events where user_id = ${userId} and type = 'login_succeeded' and at < ${beforeAt}) as any,
               exists(select 1 from security_events where user_id = ${userId} and type = 'login_succeeded' and at < ${beforeAt}
                        and device is not distinct from ${device} and network is not distinct from ${network}) as same`;
      return row ?? { any: false, same: false };
    },

    // ------------------------------------------------------------ the mail outbox

    async enqueueMail(mail: { recipient: string; subject: string; body: string }): Promise<void> {
      await sql`insert into mail_outbox (id, recipient, subject, body, created_at, attempts, next_attempt_at)
                values (${randomUUID()}, ${mail.recipient}, ${mail.subject}, ${mail.body}, now(), 0, now())`;
    },

    /**
     * Claims up to `limit` messages that are due, for `leaseSeconds`: they are counted as attempted and
     * hidden from other nodes until then, so that one message goes out once even with every node polling.
     */
    claimMail(limit: number, leaseSeconds: number) {
      return sql<OutboxRow[]>`
        update mail_outbox set attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => ${leaseSeconds})
         where id in (select id from mail_outbox where next_attempt_at <= now() order by next_attempt_at limit ${limit} for update skip locked)
        returning id, recipient, subject, body, attempts`;
    },

    async mailSent(id: string): Promise<void> {
      await sql`delete from mail_outbox where id = ${id}`;
    },

    async mailFailed(id: string, error: string, retryInSeconds: number): Promise<void> {
      await sql`update mail_outbox set last_error = ${error.slice(0, 1000)}, next_attempt_at = now() + make_interval(secs => ${retryInSeconds}) where id = ${id}`;
    },

    // ------------------------------------------------------------ the purge

    /** Entries past the log's keeping time, and challenges and reset tokens that can no longer be used. */
    async purge(keepDays: number): Promise<{ events: number; challenges: number; resetTokens: number }> {
      const events = await sql`delete from security_events where at < now() - make_interval(days => ${keepDays})`;
      const challenges = await sql`delete from mfa_challenges where expires_at < now() - interval '1 day'`;
      const resetTokens = await sql`delete from password_reset_tokens where expires_at < now() - interval '1 day'`;
      return { events: events.count, challenges: challenges.count, resetTokens: resetTokens.count };
    },
  };
}

async function replaceCodes(tx: postgres.TransactionSql, userId: string, codeHashes: string[]): Promise<void> {
  await tx`delete from recovery_codes where user_id = ${userId}`;
  const rows = codeHashes.map((codeHash) => ({ id: randomUUID(), user_id: userId, code_hash: codeHash, created_at: new Date() }));
  if (rows.length > 0) await tx`insert into recovery_codes ${tx(rows)}`;
}
