import { describe, expect, it } from 'vitest';
import type { ToolUndo } from '$shared/schemas/chat';
import type { Task } from '$shared/schemas/tasks';
import { wireTask } from '$shared/schemas/task.fixture';
import { undoState, undoTimeLeft } from './undo';

const id = '00000000-0000-4000-8000-00000000000a';
const next = '00000000-0000-4000-8000-00000000000b';
const at = '2026-12-06T10:00:00.000Z';

const task = (fields: Partial<Task> = {}): Task => wireTask({ id, seq: 1, createdAt: at, updatedAt: at, ...fields });
const store = (...tasks: Task[]) => (key: string) => tasks.find((t) => t.id === key);

const created: ToolUndo = {
  at,
  steps: [
    { event: 'task:delete', payload: { id, expectedVersion: 1 } },
    { event: 'task:purge', payload: { id, expectedVersion: 2 } },
  ],
};
const updated: ToolUndo = { at, steps: [{ event: 'task:update', payload: { id, expectedVersion: 2, patch: { title: 'Write the report', remindAt: '2026-12-06T12:00:00.000Z' } } }] };
const completed: ToolUndo = {
  at,
  steps: [
    { event: 'task:update', payload: { id, expectedVersion: 2, patch: { status: 'in_progress' } } },
    { event: 'task:delete', payload: { id: next, expectedVersion: 1 } },
    { event: 'task:purge', payload: { id: next, expectedVersion: 2 } },
  ],
};

describe('undoState [CHAT-15]', () => {
  it('offers the undo while every task is at the version the tool left it', () => {
    expect(undoState(created, store(task()))).toBe('offer');
    expect(undoState(completed, store(task({ id, version: 2, status: 'completed' }), task({ id: next })))).toBe('offer');
  });

  it('is undone when the tasks are as the undo leaves them: gone, or holding the patch (a time as an instant)', () => {
    expect(undoState(created, store())).toBe('undone');
    expect(undoState(updated, store(task({ version: 3, remindAt: '2026-12-06T12:00:00Z' })))).toBe('undone');
    expect(undoState(completed, store(task({ version: 3, status: 'in_progress' })))).toBe('undone');
  });

  it('is changed when a task moved on some other way: the undo would be CONFLICT', () => {
    expect(undoState(created, store(task({ version: 2, title: 'Renamed' })))).toBe('changed');
    expect(undoState(updated, store(task({ version: 3, title: 'Other', remindAt: '2026-12-06T12:00:00.000Z' })))).toBe('changed');
    // The task reopened, but the next occurrence was edited and stays.
    expect(undoState(completed, store(task({ version: 3, status: 'in_progress' }), task({ id: next, version: 2 })))).toBe('changed');
    // Edited twice, or purged when it should have been updated.
    expect(undoState(updated, store(task({ version: 4, title: 'Write the report', remindAt: '2026-12-06T12:00:00.000Z' })))).toBe('changed');
    expect(undoState(updated, store())).toBe('changed');
  });

  it('is undoing while some steps are done and the rest can follow, so no tab says "changed" in between', () => {
    expect(undoState(created, store(task({ version: 2, status: 'deleted' })))).toBe('undoing');
    expect(undoState(completed, store(task({ version: 3, status: 'in_progress' }), task({ id: next })))).toBe('undoing');
    expect(undoState(completed, store(task({ version: 3, status: 'in_progress' }), task({ id: next, version: 2, status: 'deleted' })))).toBe('undoing');
  });

  it('waits while this tab has not heard of the tool change yet', () => {
    expect(undoState(updated, store(task({ version: 1 })))).toBe('pending');
  });
});

describe('undoTimeLeft', () => {
  it('counts the window from the tool change on the server clock', () => {
    expect(undoTimeLeft(created, Date.parse(at) + 10_000, 30_000)).toBe(20_000);
    expect(undoTimeLeft(created, Date.parse(at) + 30_001, 30_000)).toBe(-1);
  });
});
