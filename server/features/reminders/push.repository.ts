/** SQL of the Web Push subscriptions (`push_subscriptions`). */
import { randomUUID } from 'node:crypto';
import type { Sql } from '../../db/postgres.js';

/** What sending a push to a subscription needs. */
export interface PushSubscriptionRow {
  id: string;
  endpoint: string;
  /** base64url */
  p256dh: string;
  /** base64url */
  auth: string;
}

export interface NewPushSubscription {
  endpoint: string;
  p256dh: string;
  auth: string;
  userAgent: string | null;
}

export type PushRepository = ReturnType<typeof createPushRepository>;

export function createPushRepository(sql: Sql) {
  return {
    /**
     * Stores the subscription for `userId`, replacing its keys when the endpoint
     * is known. An endpoint is one browser profile: when it was another user's
     * (someone else signed in there), it becomes this user's and starts afresh.
     * Then keeps only the user's `keep` newest subscriptions.
     */
    async upsert(userId: string, sub: NewPushSubscription, keep: number): Promise<{ movedFrom: string | null }> {
      const [row] = await sql<{ movedFrom: string | null }[]>`
        with previous as (select user_id from push_subscriptions where endpoint = ${sub.endpoint})
        insert into push_subscriptions as s (id, user_id, endpoint, p256dh, auth, user_agent, created_at)
        values (${randomUUID()}, ${userId}, ${sub.endpoint}, ${sub.p256dh}, ${sub.auth}, ${sub.userAgent}, now())
        on conflict (endpoint) do update set
          user_id = excluded.user_id,
          p256dh = excluded.p256dh,
          auth = excluded.auth,
          user_agent = excluded.user_agent,
          created_at = case when s.user_id = excluded.user_id then s.created_at else excluded.created_at end,
          last_success_at = case when s.user_id = excluded.user_id and s.p256dh = excluded.p256dh and s.auth = excluded.auth then s.last_success_at end
        returning (select p.user_id from previous p where p.user_id <> ${userId}) as moved_from`;
      await sql`
        delete from push_subscriptions where user_id = ${userId} and id not in (
          select id from push_subscriptions where user_id = ${userId} order by created_at desc, id limit ${keep})`;
      return { movedFrom: row?.movedFrom ?? null };
    },

    /** Deletes the user's subscription with this endpoint; false when the user has none such. */
    async remove(userId: string, endpoint: string): Promise<boolean> {
      const rows = await sql`delete from push_subscriptions where user_id = ${userId} and endpoint = ${endpoint} returning id`;
      return rows.length > 0;
    },

    /** Every subscription of the user, oldest first. */
    async forUser(userId: string): Promise<PushSubscriptionRow[]> {
      return sql<PushSubscriptionRow[]>`
        select id, endpoint, p256dh, auth from push_subscriptions where user_id = ${userId} order by created_at, id`;
    },

    /** Records that push services accepted pushes to these subscriptions. */
    async markSucceeded(ids: readonly string[]): Promise<void> {
      if (ids.length === 0) return;
      await sql`update push_subscriptions set last_success_at = now() where id = any(${ids as string[]}::uuid[])`;
    },

    /** Deletes subscriptions their push service says are gone (404, 410). */
    async removeGone(ids: readonly string[]): Promise<void> {
      if (ids.length === 0) return;
      await sql`delete from push_subscriptions where id = any(${ids as string[]}::uuid[])`;
    },
  };
}
