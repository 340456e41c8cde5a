import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { UserSchema } from '../auth/user.entity.js';

/*
 * The tables of account security (PROTOCOL §3b). Written and read only through
 * `security.repository.ts`; declared here so that the ORM's schema matches the
 * migration.
 */

/** AUTH-14: one recovery code, stored only as its keyed hash; `usedAt` once spent. */
export const RecoveryCodeSchema = defineEntity({
  name: 'RecoveryCode',
  tableName: 'recovery_codes',
  properties: {
    id: p.uuid().primary(),
    user: p.manyToOne(UserSchema).deleteRule('cascade').index(),
    /** hex HMAC-SHA-256 of the normalised code, keyed from SECRET_KEY */
    codeHash: p.string().length(64),
    createdAt: p.datetime(),
    usedAt: p.datetime().nullable(),
  },
});
export type RecoveryCode = InferEntity<typeof RecoveryCodeSchema>;

/** AUTH-13: a login waiting for its second factor, stored only as the challenge's SHA-256. */
export const MfaChallengeSchema = defineEntity({
  name: 'MfaChallenge',
  tableName: 'mfa_challenges',
  properties: {
    challengeHash: p.string().length(64).primary(),
    user: p.manyToOne(UserSchema).deleteRule('cascade').index(),
    createdAt: p.datetime(),
    expiresAt: p.datetime().index(),
    usedAt: p.datetime().nullable(),
  },
});
export type MfaChallenge = InferEntity<typeof MfaChallengeSchema>;

/** AUTH-16: a password-reset link, stored only as its token's SHA-256. */
export const PasswordResetTokenSchema = defineEntity({
  name: 'PasswordResetToken',
  tableName: 'password_reset_tokens',
  properties: {
    tokenHash: p.string().length(64).primary(),
    user: p.manyToOne(UserSchema).deleteRule('cascade').index(),
    createdAt: p.datetime(),
    expiresAt: p.datetime().index(),
    /** used, or made void by a newer link or a password change */
    usedAt: p.datetime().nullable(),
  },
});
export type PasswordResetToken = InferEntity<typeof PasswordResetTokenSchema>;

/**
 * AUTH-18: the durable security log, append-only (a trigger refuses updates;
 * rows go only when the purge removes them after 400 days, or with their user).
 */
export const SecurityEventSchema = defineEntity({
  name: 'SecurityEvent',
  tableName: 'security_events',
  indexes: [{ properties: ['user', 'at'] }],
  properties: {
    id: p.uuid().primary(),
    at: p.datetime().index(),
    /** null for an email that has no account */
    user: p.manyToOne(UserSchema).deleteRule('cascade').nullable(),
    /** the email a sign-in or reset named (operators search by it) */
    email: p.string().length(320).nullable().index(),
    type: p.string().length(40),
    ip: p.string().length(64).nullable(),
    userAgent: p.string().length(512).nullable(),
    /** parsed from the user agent: `Chrome on Linux` */
    device: p.string().length(120).nullable(),
    /** the client's network (IPv4 /24, IPv6 /48): with `device`, what makes a sign-in "new" */
    network: p.string().length(64).nullable(),
    details: p.json<Record<string, unknown>>().nullable(),
  },
});
export type SecurityEvent = InferEntity<typeof SecurityEventSchema>;

/**
 * Mail waiting to be sent (AUTH-16): a durable outbox, so that an SMTP server
 * that is down delays a message instead of losing it. The body is encrypted
 * (it carries a reset token); a row goes once the message is sent.
 */
export const MailOutboxSchema = defineEntity({
  name: 'MailOutbox',
  tableName: 'mail_outbox',
  properties: {
    id: p.uuid().primary(),
    recipient: p.string().length(320),
    subject: p.text(),
    /** AES-256-GCM encrypted text body */
    body: p.text(),
    createdAt: p.datetime(),
    attempts: p.integer().default(0),
    nextAttemptAt: p.datetime().index(),
    lastError: p.text().nullable(),
  },
});
export type MailOutbox = InferEntity<typeof MailOutboxSchema>;
