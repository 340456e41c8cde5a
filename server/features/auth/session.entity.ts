import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { UserSchema } from './user.entity.js';

/**
 * A login: the family of refresh tokens that descend from it. Its revocation
 * (`revokedAt`) is the durable record behind the Redis blacklist (AUTH-8).
 */
export const SessionSchema = defineEntity({
  name: 'Session',
  tableName: 'sessions',
  properties: {
    id: p.uuid().primary(),
    user: p.manyToOne(UserSchema).deleteRule('cascade').index(),
    createdAt: p.datetime().onCreate(() => new Date()),
    lastUsedAt: p.datetime().onCreate(() => new Date()),
    /** the session ends here whatever the rotations (AUTH-6) */
    absoluteExpiresAt: p.datetime(),
    /** how many times the refresh token was rotated */
    rotations: p.integer().default(0),
    revokedAt: p.datetime().nullable().index(),
    revokedReason: p.string().length(64).nullable(),
    userAgent: p.string().length(512).nullable(),
    ip: p.string().length(64).nullable(),
  },
});
export type Session = InferEntity<typeof SessionSchema>;

/**
 * One refresh token of a session, stored only as its SHA-256. A rotation retires
 * the presented token and creates its child; a retired token presented again
 * after the grace window is a replay (AUTH-6).
 */
export const RefreshTokenSchema = defineEntity({
  name: 'RefreshToken',
  tableName: 'refresh_tokens',
  properties: {
    /** hex SHA-256 of the opaque token */
    tokenHash: p.string().length(64).primary(),
    session: p.manyToOne(SessionSchema).deleteRule('cascade').index(),
    /** hash of the token this one replaced (null for the first of the family) */
    parentHash: p.string().length(64).nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    expiresAt: p.datetime(),
    retiredAt: p.datetime().nullable(),
    /** when a racing request used this retired token's grace (AUTH-6: one per token) */
    graceUsedAt: p.datetime().nullable(),
  },
});
export type RefreshToken = InferEntity<typeof RefreshTokenSchema>;
