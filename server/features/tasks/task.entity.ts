import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { taskStatuses, type Recurrence, type TaskStatus } from '../../../shared/schemas/tasks.js';
import { UserSchema } from '../auth/user.entity.js';
import { searchIndex, tsvector } from '../search/search.entity.js';

/**
 * A task (PROTOCOL §6.1). `version` is bumped by the service itself on every
 * change (TASK-2), not by MikroORM's optimistic locking: the service compares
 * the client's `expectedVersion` and answers CONFLICT with the current task.
 */
export const TaskSchema = defineEntity({
  name: 'Task',
  tableName: 'tasks',
  properties: {
    id: p.uuid().primary(),
    user: p.manyToOne(UserSchema).deleteRule('cascade'),
    title: p.text(),
    description: p.text().default(''),
    /** calendar date `YYYY-MM-DD` in the user's calendar */
    deadline: p.date().nullable(),
    /** 1..5 */
    intensity: p.smallint(),
    status: p.enum([...taskStatuses] as TaskStatus[]),
    project: p.string().length(200).nullable(),
    waitingOn: p.string().length(200).nullable(),
    /** ids of the user's tasks this one waits for; a purged id no longer blocks */
    dependencies: p.array().columnType('uuid[]'),
    recurrence: p.json<Recurrence>().nullable(),
    /**
     * The day of the month the series is anchored on (1..31), carried from
     * occurrence to occurrence so that 31 Jan → 28 Feb → 31 Mar. Never on the wire.
     */
    seriesDay: p.smallint().nullable(),
    /** the occurrence created when this one was completed, so that re-completing spawns no second one */
    nextOccurrenceId: p.uuid().nullable(),
    /** the status to bring back on restore (TASK-4) */
    statusBeforeDelete: p.enum([...taskStatuses] as TaskStatus[]).nullable(),
    /** starts at 1, +1 per change (TASK-2) */
    version: p.integer(),
    /** the user's change sequence at this task's last change (SYNC-1) */
    seq: p.integer(),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
    completedAt: p.datetime().nullable(),
    deletedAt: p.datetime().nullable(),
    /** (1.1) when the user asked to be reminded; the reminder itself is a row of `reminders` */
    remindAt: p.datetime().nullable(),
    /** the id of the task's reminder while it has one, so that a change knows which one it replaces or clears */
    reminderId: p.uuid().nullable(),
    /** (1.1) CHAT-11: the words of the title (weight A) and description (B); computed by PostgreSQL, never written */
    search: p.string().columnType('tsvector').generated(tsvector(['title', 'A'], ['description', 'B'])).lazy().hidden(),
  },
  indexes: [{ properties: ['user', 'seq'] }, { properties: ['user', 'status'] }, searchIndex('tasks')],
});
export type TaskEntity = InferEntity<typeof TaskSchema>;

/**
 * The record that a task was purged, so that `task:sync` can tell clients
 * (SYNC-1). Kept at least 30 days; pruning raises `users.tombstone_floor_seq`.
 */
export const TaskTombstoneSchema = defineEntity({
  name: 'TaskTombstone',
  tableName: 'task_tombstones',
  properties: {
    id: p.uuid().primary(),
    user: p.manyToOne(UserSchema).deleteRule('cascade'),
    taskId: p.uuid(),
    /** the user's change sequence of the purge */
    seq: p.integer(),
    purgedAt: p.datetime(),
  },
  indexes: [{ properties: ['user', 'seq'] }, { properties: ['purgedAt'] }],
});
export type TaskTombstone = InferEntity<typeof TaskTombstoneSchema>;
