/**
 * Where an assistant tool call's Undo stands (CHAT-15), read from this tab's
 * copy of the tasks alone, so that every tab agrees without being told who
 * pressed it: the task events of an undo, or of any other change, reach every
 * tab, and the versions and fields they carry say what happened.
 */
import type { ToolUndo, UndoStep } from '$shared/schemas/chat';
import type { Task, TaskPatch } from '$shared/schemas/tasks';

/**
 * - `offer`: every task is at the version the tool left it: the undo would apply;
 * - `undone`: the tasks are as the undo leaves them (it ran, in this tab or another);
 * - `changed`: something changed them since: the undo would be CONFLICT;
 * - `pending`: this tab has not heard of the tool's change yet.
 */
export type UndoState = 'offer' | 'undone' | 'changed' | 'pending';

function byTask(steps: readonly UndoStep[]): Map<string, UndoStep[]> {
  const out = new Map<string, UndoStep[]>();
  for (const step of steps) out.set(step.payload.id, [...(out.get(step.payload.id) ?? []), step]);
  return out;
}

/** Whether `task` holds every field of `patch` (times compared as instants). */
function holds(task: Task, patch: TaskPatch): boolean {
  return Object.entries(patch).every(([key, value]) => {
    const current = task[key as keyof TaskPatch];
    if (key === 'remindAt') return (current === null ? null : Date.parse(current as string)) === (value === null ? null : Date.parse(value as string));
    if (key === 'recurrence') {
      const [a, b] = [current as Task['recurrence'], value as Task['recurrence']];
      return a === null || b === null ? a === b : a.type === b.type && a.interval === b.interval && (a.endDate ?? null) === (b.endDate ?? null);
    }
    return JSON.stringify(current) === JSON.stringify(value);
  });
}

/** Whether each task is as the undo's steps leave it. */
function reverted(tasks: Map<string, UndoStep[]>, get: (id: string) => Task | undefined): boolean {
  for (const [id, steps] of tasks) {
    const task = get(id);
    if (steps.at(-1)!.event === 'task:purge') {
      if (task) return false;
      continue;
    }
    if (!task) return false;
    for (const step of steps) {
      const ok =
        step.event === 'task:update' ? holds(task, step.payload.patch)
        : step.event === 'task:delete' ? task.status === 'deleted'
        : step.event === 'task:restore' ? task.status !== 'deleted'
        : step.event === 'task:complete' ? task.status === 'completed'
        : true;
      if (!ok) return false;
    }
  }
  return true;
}

/** Where `undo` stands, given this tab's tasks (`get` answers undefined for a task it does not hold). */
export function undoState(undo: ToolUndo, get: (id: string) => Task | undefined): UndoState {
  const tasks = byTask(undo.steps);
  let fresh = true;
  for (const [id, steps] of tasks) {
    const version = get(id)?.version;
    const expected = steps[0]!.payload.expectedVersion;
    if (version !== undefined && version < expected) return 'pending';
    if (version !== expected) fresh = false;
  }
  if (fresh) return 'offer';
  return reverted(tasks, get) ? 'undone' : 'changed';
}

/** Ms left of the window in which the Undo is offered, on the server's clock (negative once it is over). */
export function undoTimeLeft(undo: ToolUndo, serverNow: number, windowMs: number): number {
  return Date.parse(undo.at) + windowMs - serverNow;
}
