import { z } from 'zod';
import { limits } from '../limits.js';
import { calendarDate, id, text } from './common.js';
import { remindAt } from './reminders.js';

import { intensityClasses, openTaskStatuses, recurrenceTypes, taskStatuses, taskViews } from '../constants.js';

export { intensityClasses, openTaskStatuses, recurrenceTypes, taskStatuses, taskViews };
export type TaskStatus = (typeof taskStatuses)[number];
export type TaskListView = (typeof taskViews)[number];
export type IntensityClass = (typeof intensityClasses)[number];

export const recurrence = z.strictObject({
  type: z.enum(recurrenceTypes),
  interval: z.int().min(1).max(1000),
  endDate: calendarDate.nullable().default(null),
});
export type Recurrence = z.infer<typeof recurrence>;

const title = text(1, limits.taskTitleMax).refine((s) => s.trim().length > 0, 'Must not be blank');
const description = text(0, limits.taskDescriptionMax);
const project = text(0, limits.taskProjectMax).nullable();
const waitingOn = text(0, limits.taskWaitingOnMax).nullable();
const intensity = z.int().min(1).max(5);
const dependencies = z.array(id).max(limits.taskDependenciesMax);

/** The fields a client may set; every one optional in a patch. */
export const taskPatch = z
  .strictObject({
    title,
    description,
    deadline: calendarDate.nullable(),
    intensity,
    status: z.enum(openTaskStatuses),
    project,
    waitingOn,
    dependencies,
    recurrence: recurrence.nullable(),
    /** REM: when to remind (null clears the reminder) */
    remindAt: remindAt.nullable(),
  })
  .partial();
export type TaskPatch = z.infer<typeof taskPatch>;

/** A new task: the patch fields with a required title, and an optional client-chosen id (TASK-1). */
export const taskCreate = taskPatch.extend({ id: id.optional(), title });
export type TaskCreate = z.infer<typeof taskCreate>;

/** TASK-2: a change refused with CONFLICT (and the current task in `details.task`) unless the task is at this version. */
const expectedVersion = z.int().min(1).optional();

export const taskUpdate = z.strictObject({
  id,
  expectedVersion,
  patch: taskPatch,
});
export type TaskUpdate = z.infer<typeof taskUpdate>;

/** `expectedVersion` (1.1, CHAT-15): optional, as in `task:update`. */
export const taskComplete = z.strictObject({ id, notes: text(0, 2000).optional(), expectedVersion });
export type TaskComplete = z.infer<typeof taskComplete>;
export const taskById = z.strictObject({ id });
/** `task:delete`, `task:restore`, `task:purge`; `expectedVersion` (1.1, CHAT-15): optional, as in `task:update`. */
export const taskByIdAt = z.strictObject({ id, expectedVersion });
export type TaskByIdAt = z.infer<typeof taskByIdAt>;
export const taskList = z.strictObject({
  view: z.enum(taskViews).optional(),
  days: z.int().min(1).max(365).optional(),
  project: text(1, limits.taskProjectMax).optional(),
});
export type TaskListQuery = z.infer<typeof taskList>;
export const taskNext = z.strictObject({ intensity: z.enum(intensityClasses).optional() });
export const taskSync = z.strictObject({ since: z.int().min(0) });

/** A task as the wire shows it. */
export interface Task {
  id: string;
  title: string;
  description: string;
  /** `YYYY-MM-DD` or null */
  deadline: string | null;
  /** 1..5 */
  intensity: number;
  status: TaskStatus;
  project: string | null;
  waitingOn: string | null;
  dependencies: string[];
  recurrence: Recurrence | null;
  version: number;
  /** the user's change sequence at this task's last change */
  seq: number;
  createdAt: string;
  updatedAt: string;
  completedAt: string | null;
  deletedAt: string | null;
  /** (1.1) when the user asked to be reminded, or null */
  remindAt: string | null;
}

export interface TaskChanged {
  seq: number;
  task: Task;
}
export interface TaskRemoved {
  seq: number;
  id: string;
}
export interface TaskSyncResult {
  seq: number;
  tasks: Task[];
  removed: string[];
  /** set when `since` predates the kept purge records: replace the local copy */
  reset?: true;
}
