import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { UserSchema } from '../auth/user.entity.js';
import { TaskSchema } from '../tasks/task.entity.js';

/** Where a reminder is: waiting for its time, being delivered by one node, delivered, dismissed. */
export const storedReminderStates = ['pending', 'firing', 'due', 'dismissed'] as const;
export type StoredReminderState = (typeof storedReminderStates)[number];

const partial = (name: string, columnsAndWhere: string) => ({ name, expression: `create index "${name}" on "reminders" ${columnsAndWhere}` });

/**
 * A task's reminder (PROTOCOL §6.1b). Written with its task, in the task's
 * change (`tasks.repository.ts`); fired by the claim loop
 * (`server/jobs/reminders.ts`), which moves it `pending` → `firing` (a lease,
 * `claimedUntil`) → `due`. A node that dies between the two leaves the lease to
 * expire, and another node fires it again, late (REM-2).
 */
export const ReminderSchema = defineEntity({
  name: 'Reminder',
  tableName: 'reminders',
  properties: {
    id: p.uuid().primary(),
    user: p.manyToOne(UserSchema).deleteRule('cascade'),
    task: p.manyToOne(TaskSchema).deleteRule('cascade').unique(),
    firesAt: p.datetime(),
    state: p.enum([...storedReminderStates] as StoredReminderState[]),
    late: p.boolean().default(false),
    /** while `firing`: the lease of the node delivering it */
    claimedUntil: p.datetime().nullable(),
    firedAt: p.datetime().nullable(),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
  },
  // Partial indexes, as the migration made them (so that the schema diff of scripts/gen-migration.ts keeps them): the
  // claim loop's two questions, what fell due and whose lease ran out, and a user's due reminders.
  indexes: [
    partial('reminders_pending_fires_at_index', '("fires_at") where "state" = \'pending\''),
    partial('reminders_firing_claimed_until_index', '("claimed_until") where "state" = \'firing\''),
    partial('reminders_due_user_id_index', '("user_id", "fires_at") where "state" in (\'firing\', \'due\')'),
  ],
});
export type ReminderEntity = InferEntity<typeof ReminderSchema>;
