/**
 * CHAT-15: the undo of a tool's task change, worked out from the task before
 * and after it (the service answers both from one change, so nothing can slip
 * in between). An undo is a list of ordinary task events, each naming the
 * version the task has when it comes (TASK-2), so a change made since in any
 * tab is CONFLICT and stays. Pure functions: no storage, no clock.
 *
 * What cannot come back exactly, and why:
 * - a reminder whose time had passed when the tool ran: it has fired already,
 *   and setting it again would fire it once more (REM-7);
 * - `deletedAt` when a restore is undone, and `completedAt` when a reopen is:
 *   no event sets them, so they become the undo's time.
 */
import type { ToolUndo, UndoStep } from '../../../shared/schemas/chat.js';
import type { Task, TaskPatch } from '../../../shared/schemas/tasks.js';
import { openTaskStatuses } from '../../../shared/schemas/tasks.js';

type Open = (typeof openTaskStatuses)[number];
const isOpen = (status: Task['status']): status is Open => (openTaskStatuses as readonly string[]).includes(status);

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The reminder to set back: the one before, unless it had passed by `at` (see above); undefined when none is needed. */
function reminderBack(before: Task, after: Task, at: string): { remindAt: string | null } | undefined {
  if (before.remindAt === after.remindAt) return undefined;
  if (before.remindAt === null) return { remindAt: null };
  return Date.parse(before.remindAt) > Date.parse(at) ? { remindAt: before.remindAt } : undefined;
}

/**
 * The `task:update` patch that takes `after` back to `before` in every field
 * the patch can set and the change altered, the status only when it was open.
 */
export function revertPatch(before: Task, after: Task): TaskPatch {
  const patch: TaskPatch = {};
  if (before.title !== after.title) patch.title = before.title;
  if (before.description !== after.description) patch.description = before.description;
  if (before.deadline !== after.deadline) patch.deadline = before.deadline;
  if (before.intensity !== after.intensity) patch.intensity = before.intensity;
  if (before.status !== after.status && isOpen(before.status)) patch.status = before.status;
  if (before.project !== after.project) patch.project = before.project;
  if (before.waitingOn !== after.waitingOn) patch.waitingOn = before.waitingOn;
  if (!sameJson(before.dependencies, after.dependencies)) patch.dependencies = [...before.dependencies];
  if (!sameJson(before.recurrence, after.recurrence)) patch.recurrence = before.recurrence && { ...before.recurrence };
  Object.assign(patch, reminderBack(before, after, after.updatedAt));
  return patch;
}

/** Steps one task goes through, each expecting the version the one before left. */
class Steps {
  readonly list: UndoStep[] = [];
  constructor(private readonly id: string, private version: number) {}

  update(patch: TaskPatch): this {
    if (Object.keys(patch).length > 0) this.list.push({ event: 'task:update', payload: { id: this.id, expectedVersion: this.version++, patch } });
    return this;
  }

  then(event: 'task:complete' | 'task:delete' | 'task:restore' | 'task:purge'): this {
    this.list.push({ event, payload: { id: this.id, expectedVersion: this.version++ } });
    return this;
  }
}

const undo = (after: Task, steps: UndoStep[]): ToolUndo | undefined => (steps.length > 0 ? { at: after.updatedAt, steps } : undefined);

/** `create_task`: the new task goes, trash and all (it did not exist before). */
export function undoCreate(created: Task): ToolUndo | undefined {
  return undo(created, new Steps(created.id, created.version).then('task:delete').then('task:purge').list);
}

/** `update_task`: the fields it changed go back; a task it reopened is completed again. */
export function undoUpdate(before: Task, after: Task): ToolUndo | undefined {
  if (after.version === before.version) return undefined;
  const steps = new Steps(after.id, after.version).update(revertPatch(before, after));
  if (before.status === 'completed' && after.status !== 'completed') steps.then('task:complete');
  return undo(after, steps.list);
}

/**
 * `complete_task`: the task is reopened with the status, description (before
 * the completion notes) and reminder it had, and the next occurrence a
 * recurring task made goes, trash and all.
 */
export function undoComplete(before: Task, after: Task, next: Task | null): ToolUndo | undefined {
  if (after.version === before.version) return undefined;
  const steps = new Steps(after.id, after.version).update(revertPatch(before, after)).list;
  if (next) steps.push(...new Steps(next.id, next.version).then('task:delete').then('task:purge').list);
  return undo(after, steps);
}

/** `delete_task`: back from the trash, with the reminder it had. */
export function undoDelete(before: Task, after: Task): ToolUndo | undefined {
  if (after.version === before.version) return undefined;
  return undo(after, new Steps(after.id, after.version).then('task:restore').update({ ...reminderBack(before, after, after.updatedAt) }).list);
}

/** `restore_task`: back to the trash. */
export function undoRestore(before: Task, after: Task): ToolUndo | undefined {
  if (after.version === before.version) return undefined;
  return undo(after, new Steps(after.id, after.version).then('task:delete').list);
}
