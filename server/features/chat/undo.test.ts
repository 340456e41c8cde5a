/** The undo of a tool's task change (CHAT-15), from the task before and after it: no database. */
import { describe, expect, it } from 'vitest';
import type { Task } from '../../../shared/schemas/tasks.js';
import { wireTask } from '../../../shared/schemas/task.fixture.js';
import { revertPatch, undoComplete, undoCreate, undoDelete, undoRestore, undoUpdate } from './undo.js';

const at = '2026-12-06T10:00:00.000Z';
const later = '2026-12-06T12:00:00.000Z';
const earlier = '2026-12-06T09:00:00.000Z';

const task = wireTask;
/** `before` as a change at `at` left it: version and seq one higher, the fields given. */
const changed = (before: Task, fields: Partial<Task>): Task => ({ ...before, ...fields, version: before.version + 1, seq: before.seq + 1, updatedAt: at });

describe('revertPatch [CHAT-15]', () => {
  it('names exactly the fields that changed, with their values before', () => {
    const before = task({ project: 'Work', dependencies: ['00000000-0000-4000-8000-0000000000d1'], recurrence: { type: 'weekly', interval: 2, endDate: null } });
    const after = changed(before, { title: 'Renamed', project: null, status: 'in_progress', dependencies: [], recurrence: null, intensity: 5 });
    expect(revertPatch(before, after)).toEqual({
      title: 'Write the report',
      project: 'Work',
      status: 'not_started',
      dependencies: ['00000000-0000-4000-8000-0000000000d1'],
      recurrence: { type: 'weekly', interval: 2, endDate: null },
      intensity: 3,
    });
    expect(revertPatch(before, changed(before, {}))).toEqual({});
  });

  it('sets back a reminder still to come and a cleared one, never one whose time had passed when the tool ran (it fired)', () => {
    expect(revertPatch(task({ remindAt: later }), changed(task(), { remindAt: null }))).toEqual({ remindAt: later });
    expect(revertPatch(task(), changed(task(), { remindAt: later }))).toEqual({ remindAt: null });
    expect(revertPatch(task({ remindAt: earlier }), changed(task(), { remindAt: later }))).toEqual({});
  });
});

describe('undo steps [CHAT-15]', () => {
  it('create: delete then purge, each expecting the version the step before left', () => {
    const created = task({ updatedAt: at });
    expect(undoCreate(created)).toEqual({
      at,
      steps: [
        { event: 'task:delete', payload: { id: created.id, expectedVersion: 1 } },
        { event: 'task:purge', payload: { id: created.id, expectedVersion: 2 } },
      ],
    });
  });

  it('update: one task:update; a reopened task is completed again after it; a change of nothing has no undo', () => {
    const before = task({ version: 3 });
    const after = changed(before, { title: 'New' });
    expect(undoUpdate(before, after)).toEqual({ at, steps: [{ event: 'task:update', payload: { id: before.id, expectedVersion: 4, patch: { title: 'Write the report' } } }] });
    const done = task({ status: 'completed', completedAt: earlier, version: 2 });
    const reopened = changed(done, { status: 'in_progress', completedAt: null, title: 'Again' });
    expect(undoUpdate(done, reopened)!.steps).toEqual([
      { event: 'task:update', payload: { id: done.id, expectedVersion: 3, patch: { title: 'Write the report' } } },
      { event: 'task:complete', payload: { id: done.id, expectedVersion: 4 } },
    ]);
    expect(undoUpdate(done, changed(done, { status: 'not_started', completedAt: null }))!.steps).toEqual([{ event: 'task:complete', payload: { id: done.id, expectedVersion: 3 } }]);
    expect(undoUpdate(before, before)).toBeUndefined();
    // Only a reminder that had already fired changed: nothing can be set back.
    expect(undoUpdate(task({ remindAt: earlier }), changed(task({ remindAt: earlier }), { remindAt: null }))).toBeUndefined();
  });

  it('complete: reopened with its status, description and reminder, and the next occurrence removed', () => {
    const before = task({ status: 'in_progress', remindAt: later, version: 2 });
    const after = changed(before, { status: 'completed', completedAt: at, description: 'Quarterly\n\nCompleted: sent', remindAt: null });
    const next = task({ id: '00000000-0000-4000-8000-00000000000b', updatedAt: at });
    expect(undoComplete(before, after, next)!.steps).toEqual([
      { event: 'task:update', payload: { id: before.id, expectedVersion: 3, patch: { status: 'in_progress', description: 'Quarterly', remindAt: later } } },
      { event: 'task:delete', payload: { id: next.id, expectedVersion: 1 } },
      { event: 'task:purge', payload: { id: next.id, expectedVersion: 2 } },
    ]);
    expect(undoComplete(after, after, null)).toBeUndefined();
  });

  it('delete: restored, then its reminder set back; restore: back to the trash', () => {
    const before = task({ remindAt: later, version: 5 });
    const trashed = changed(before, { status: 'deleted', deletedAt: at, remindAt: null });
    expect(undoDelete(before, trashed)!.steps).toEqual([
      { event: 'task:restore', payload: { id: before.id, expectedVersion: 6 } },
      { event: 'task:update', payload: { id: before.id, expectedVersion: 7, patch: { remindAt: later } } },
    ]);
    expect(undoDelete(task(), changed(task(), { status: 'deleted', deletedAt: at }))!.steps).toEqual([{ event: 'task:restore', payload: { id: before.id, expectedVersion: 2 } }]);
    expect(undoDelete(trashed, trashed)).toBeUndefined();
    const restored = changed(trashed, { status: 'not_started', deletedAt: null });
    expect(undoRestore(trashed, restored)).toEqual({ at, steps: [{ event: 'task:delete', payload: { id: before.id, expectedVersion: 7 } }] });
  });
});
