import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { UserSchema } from '../auth/user.entity.js';

/**
 * A browser's Web Push subscription (`PushSubscription.toJSON()`), to which the
 * user's reminders are pushed when they fire. Written and read only through
 * `push.repository.ts`; declared here so that the ORM's schema matches the
 * migration.
 */
export const PushSubscriptionSchema = defineEntity({
  name: 'PushSubscription',
  tableName: 'push_subscriptions',
  properties: {
    id: p.uuid().primary(),
    user: p.manyToOne(UserSchema).deleteRule('cascade').index(),
    /** the push service's URL for this browser; one browser profile has one, whoever is signed in */
    endpoint: p.text().unique(),
    /** the browser's P-256 public key, base64url (RFC 8291) */
    p256dh: p.text(),
    /** the browser's 16-byte authentication secret, base64url (RFC 8291) */
    auth: p.text(),
    userAgent: p.text().nullable(),
    createdAt: p.datetime(),
    /** when a push service last accepted a push to it */
    lastSuccessAt: p.datetime().nullable(),
  },
});
export type PushSubscriptionEntity = InferEntity<typeof PushSubscriptionSchema>;
