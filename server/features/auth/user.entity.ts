import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

export const UserSchema = defineEntity({
  name: 'User',
  tableName: 'users',
  properties: {
    id: p.uuid().primary(),
    /** trimmed and lower-cased (AUTH-2) */
    email: p.string().length(320).unique(),
    /** argon2id PHC string; never leaves the server */
    passwordHash: p.text(),
    fullName: p.string().length(200).default(''),
    /** IANA time zone name */
    timezone: p.string().length(64).default('UTC'),
    role: p.enum(['user', 'admin'] as const).default('user'),
    lastLoginAt: p.datetime().nullable(),
    /** access tokens issued before this instant are refused (logout-all, deletion) */
    tokensValidAfter: p.datetime().nullable(),
    /** the user's change sequence (SYNC-1), bumped with every task change */
    taskSeq: p.integer().default(0),
    /** the highest `seq` of pruned task tombstones: `task:sync` from below it answers a reset (SYNC-1) */
    tombstoneFloorSeq: p.integer().default(0),
    /** AUTH-14: the TOTP secret, AES-256-GCM encrypted (`security/secret-box.ts`); null while two-factor is off */
    mfaSecret: p.text().nullable(),
    /** a secret set up (`mfa:setup`) and not yet confirmed, encrypted likewise; a new setup replaces it */
    mfaPendingSecret: p.text().nullable(),
    /** when two-factor sign-in was turned on; null when off */
    mfaEnabledAt: p.datetime().nullable(),
    /** AUTH-13: the last TOTP time step accepted, so that a code is accepted at most once */
    mfaLastStep: p.integer().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
});
export type User = InferEntity<typeof UserSchema>;
