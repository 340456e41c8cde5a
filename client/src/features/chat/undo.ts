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
 * - `undoing`: some of its steps are done and the rest can follow (a tab is sending them);
 * - `undone`: the tasks are as the undo leaves them (it ran, in this tab or another);
 * - `changed`: something else changed them since: the undo would be CONFLICT;
 * - `pending`: this tab has not heard of the tool's change yet.
 */
export type UndoState = 'offer' | 'undoing' | 'undone' | 'changed' | 'pending';

/** How far one task is along its steps: none done, some, all, off the undo's path, or not yet at its start. */
type Progress = 'start' | 'mid' | 'end' | 'off' | 'behind';

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

/** Whether `task` is as `step` leaves it (and the steps after it on the same task keep). */
function done(task: Task, step: UndoStep): boolean {
  switch (step.event) {
    case 'task:update':
      return holds(task, step.payload.patch);
    case 'task:delete':
      return task.status === 'deleted';
    case 'task:restore':
      return task.status !== 'deleted';
    case 'task:complete':
      return task.status === 'completed';
    case 'task:purge':
      return false;
  }
}

/**
 * One task's progress: each step moves its version on by one, so the version
 * says how many are done, and the task must then be as those steps leave it.
 * A task that is gone is at the end of steps ending in a purge.
 */
function progress(steps: UndoStep[], task: Task | undefined): Progress {
  const purged = steps.at(-1)!.event === 'task:purge';
  if (!task) return purged ? 'end' : 'off';
  const applied = task.version - steps[0]!.payload.expectedVersion;
  if (applied < 0) return 'behind';
  if (applied === 0) return 'start';
  if (applied > steps.length - (purged ? 1 : 0)) return 'off';
  if (!steps.slice(0, applied).every((step) => done(task, step))) return 'off';
  return applied === steps.length ? 'end' : 'mid';
}

/** Where `undo` stands, given this tab's tasks (`get` answers undefined for a task it does not hold). */
export function undoState(undo: ToolUndo, get: (id: string) => Task | undefined): UndoState {
  const all = [...byTask(undo.steps)].map(([id, steps]) => progress(steps, get(id)));
  if (all.includes('behind')) return 'pending';
  if (all.includes('off')) return 'changed';
  if (all.every((p) => p === 'start')) return 'offer';
  if (all.every((p) => p === 'end')) return 'undone';
  return 'undoing';
}

/** Ms left of the window in which the Undo is offered, on the server's clock (negative once it is over). */
export function undoTimeLeft(undo: ToolUndo, serverNow: number, windowMs: number): number {
  return Date.parse(undo.at) + windowMs - serverNow;
}
