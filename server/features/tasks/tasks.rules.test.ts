/** The task rules alone: no database, no sockets. */
import { describe, expect, it } from 'vitest';
import { AppError, ErrorCode } from '../../errors.js';
import { taskRecord } from './task-record.fixture.js';
import {
  assertPurgeable,
  checkDependencies,
  completeTask,
  createTask,
  isExpired,
  patchTask,
  reminderChanges,
  restoreTask,
  toWireTask,
  trashTask,
  type ChangeContext,
} from './tasks.rules.js';

const userId = '00000000-0000-4000-8000-000000000001';
const now = new Date('2026-12-06T10:00:00.000Z');

/** A context whose seq numbers start after `from`. */
function context(from = 10): ChangeContext & { last(): number } {
  let seq = from;
  return { now, timeZone: 'UTC', nextSeq: () => ++seq, last: () => seq };
}

const record = taskRecord;

function refusal(run: () => unknown, code: ErrorCode): AppError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe(code);
    return err as AppError;
  }
  throw new Error('expected a refusal');
}

describe('createTask', () => {
  it('takes the next seq, version 1, trims the title and fills the defaults', () => {
    const ctx = context();
    const task = createTask(userId, 'id-1', { title: '  Call Ana  ' }, [], ctx);
    expect(task).toMatchObject({ id: 'id-1', userId, title: 'Call Ana', description: '', status: 'not_started', version: 1, seq: 11, createdAt: now, updatedAt: now });
    expect(task.intensity).toBeGreaterThanOrEqual(1);
    expect(ctx.last()).toBe(11);
  });

  it('anchors a recurring series on its deadline’s day of the month; blank optional text means none', () => {
    const task = createTask(userId, 'id-2', { title: 'Rent', deadline: '2027-01-31', recurrence: { type: 'monthly', interval: 1, endDate: null }, project: '  ', waitingOn: '' }, [], context());
    expect(task).toMatchObject({ seriesDay: 31, project: null, waitingOn: null });
  });
});

describe('checkDependencies [TASK-6]', () => {
  const graph = new Map<string, string[]>([
    ['a', []],
    ['b', ['a']],
    ['c', ['b']],
  ]);

  it('returns them in lower case, without duplicates, in the order given', () => {
    expect(checkDependencies(graph, 'x', ['B', 'a', 'b'], 'dependencies')).toEqual(['b', 'a']);
  });

  it('refuses the task itself, an unknown id and a cycle, on the given path', () => {
    expect(refusal(() => checkDependencies(graph, 'a', ['a'], 'patch.dependencies'), ErrorCode.VALIDATION).issues).toEqual([
      { path: 'patch.dependencies', message: 'A task cannot depend on itself' },
    ]);
    expect(refusal(() => checkDependencies(graph, 'x', ['zz'], 'dependencies'), ErrorCode.VALIDATION).message).toMatch(/Unknown task/);
    expect(refusal(() => checkDependencies(graph, 'a', ['c'], 'patch.dependencies'), ErrorCode.VALIDATION).message).toMatch(/cycle/);
  });
});

describe('patchTask [TASK-2]', () => {
  it('changes only what differs, bumping version and seq once', () => {
    const ctx = context(20);
    const task = record();
    const updated = patchTask(task, { title: ' New title ', description: 'Quarterly' }, undefined, undefined, ctx)!;
    expect(updated).toMatchObject({ title: 'New title', description: 'Quarterly', version: 2, seq: 21, updatedAt: now });
    expect(task.title).toBe('Write the report');
  });

  it('a patch that changes nothing is null and takes no seq', () => {
    const ctx = context(20);
    expect(patchTask(record(), { title: 'Write the report', project: '', dependencies: [] }, 1, [], ctx)).toBeNull();
    expect(ctx.last()).toBe(20);
  });

  it('a stale expectedVersion is CONFLICT carrying the current task; a task in the trash is CONFLICT', () => {
    const task = record({ version: 3 });
    expect(refusal(() => patchTask(task, { title: 'x' }, 2, undefined, context()), ErrorCode.CONFLICT).details).toEqual({ task: toWireTask(task) });
    refusal(() => patchTask(record({ status: 'deleted' }), { title: 'x' }, undefined, undefined, context()), ErrorCode.CONFLICT);
  });

  it('reopening a completed task clears completedAt; a new deadline or recurrence moves the series day', () => {
    const reopened = patchTask(record({ status: 'completed', completedAt: now }), { status: 'in_progress' }, undefined, undefined, context())!;
    expect(reopened).toMatchObject({ status: 'in_progress', completedAt: null });
    const recurring = record({ deadline: '2027-01-31', recurrence: { type: 'monthly', interval: 1, endDate: null }, seriesDay: 31 });
    expect(patchTask(recurring, { deadline: '2027-02-15' }, undefined, undefined, context())!.seriesDay).toBe(15);
    expect(patchTask(recurring, { recurrence: null }, undefined, undefined, context())!.seriesDay).toBeNull();
  });
});

describe('completeTask [TASK-3]', () => {
  it('completes with notes appended; completing a completed task is null', () => {
    const done = completeTask(record(), '  sent  ', [], context(30))!;
    expect(done.task).toMatchObject({ status: 'completed', completedAt: now, description: 'Quarterly\n\nCompleted: sent', version: 2, seq: 31 });
    expect(done.next).toBeNull();
    expect(completeTask(done.task, undefined, [], context())).toBeNull();
  });

  it('refuses a task in the trash, and one with open dependencies naming them in the task’s order', () => {
    refusal(() => completeTask(record({ status: 'deleted' }), undefined, [], context()), ErrorCode.CONFLICT);
    const blocked = record({ dependencies: ['d1', 'd2', 'd3'] });
    expect(refusal(() => completeTask(blocked, undefined, ['d3', 'd1'], context()), ErrorCode.CONFLICT).details).toEqual({ blockedBy: ['d1', 'd3'] });
  });

  it('a recurring task gets exactly one next occurrence, the seq after its own, keeping the series day', () => {
    const monthly = record({ deadline: '2027-01-31', recurrence: { type: 'monthly', interval: 1, endDate: null }, seriesDay: 31, project: 'Home', waitingOn: 'Bob' });
    const first = completeTask(monthly, 'paid', [], context(40))!;
    expect(first.task).toMatchObject({ seq: 41, nextOccurrenceId: first.next!.id });
    expect(first.next).toMatchObject({ deadline: '2027-02-28', seriesDay: 31, seq: 42, version: 1, status: 'not_started', description: 'Quarterly', project: 'Home', waitingOn: null });
    const second = completeTask(first.next!, undefined, [], context(50))!;
    expect(second.next!.deadline).toBe('2027-03-31');
    // Reopened and completed again: no second occurrence.
    const reopened = patchTask(first.task, { status: 'not_started' }, undefined, undefined, context(60))!;
    expect(completeTask(reopened, undefined, [], context(70))!.next).toBeNull();
  });

  it('no next occurrence past the end date', () => {
    const last = record({ deadline: '2027-01-31', recurrence: { type: 'daily', interval: 1, endDate: '2027-01-31' }, seriesDay: 31 });
    expect(completeTask(last, undefined, [], context())!.next).toBeNull();
  });
});

describe('trash, restore and purge [TASK-4]', () => {
  it('trashing keeps the status to restore; trashing twice is null; restore brings it back, even completed', () => {
    const trashed = trashTask(record({ status: 'completed', completedAt: now }), context())!;
    expect(trashed).toMatchObject({ status: 'deleted', statusBeforeDelete: 'completed', deletedAt: now });
    expect(trashTask(trashed, context())).toBeNull();
    expect(restoreTask(trashed, context())).toMatchObject({ status: 'completed', statusBeforeDelete: null, deletedAt: null });
    refusal(() => restoreTask(record(), context()), ErrorCode.CONFLICT);
  });

  it('only a task in the trash can be purged; the purge job takes what was completed or deleted before the cutoff', () => {
    refusal(() => assertPurgeable(record()), ErrorCode.CONFLICT);
    expect(() => assertPurgeable(record({ status: 'deleted' }))).not.toThrow();
    const cutoff = new Date('2026-11-29T00:00:00.000Z');
    const old = new Date('2026-11-28T00:00:00.000Z');
    expect(isExpired(record({ status: 'completed', completedAt: old }), cutoff)).toBe(true);
    expect(isExpired(record({ status: 'deleted', deletedAt: old }), cutoff)).toBe(true);
    expect(isExpired(record({ status: 'deleted', deletedAt: now }), cutoff)).toBe(false);
    expect(isExpired(record({ status: 'in_progress', completedAt: old }), cutoff)).toBe(false);
  });
});

describe('expectedVersion on complete, delete, restore and purge [TASK-2] [CHAT-15]', () => {
  const stale = (task: ReturnType<typeof record>, run: () => unknown) =>
    expect(refusal(run, ErrorCode.CONFLICT).details).toEqual({ task: toWireTask(task) });

  it('the version the task has is accepted; without one, as before', () => {
    const task = record({ version: 4 });
    expect(completeTask(task, undefined, [], context(), { expectedVersion: 4 })!.task).toMatchObject({ status: 'completed', version: 5 });
    expect(trashTask(task, context(), 4)).toMatchObject({ status: 'deleted', version: 5 });
    const trashed = record({ status: 'deleted', statusBeforeDelete: 'in_progress', version: 6 });
    expect(restoreTask(trashed, context(), 6)).toMatchObject({ status: 'in_progress', version: 7 });
    expect(() => assertPurgeable(trashed, 6)).not.toThrow();
    expect(() => assertPurgeable(trashed)).not.toThrow();
  });

  it('another version is CONFLICT carrying the current task, and takes no seq', () => {
    const task = record({ version: 4 });
    const trashed = record({ status: 'deleted', version: 6 });
    const ctx = context(20);
    stale(task, () => completeTask(task, 'notes', [], ctx, { expectedVersion: 3 }));
    stale(task, () => completeTask(task, undefined, [], ctx, { expectedVersion: 5 }));
    stale(task, () => trashTask(task, ctx, 3));
    stale(trashed, () => restoreTask(trashed, ctx, 5));
    stale(trashed, () => assertPurgeable(trashed, 7));
    expect(ctx.last()).toBe(20);
  });

  it('is checked before "nothing to change": a repeated request names a version that has moved on, and is CONFLICT', () => {
    const done = record({ status: 'completed', completedAt: now, version: 2 });
    expect(completeTask(done, undefined, [], context())).toBeNull();
    stale(done, () => completeTask(done, undefined, [], context(), { expectedVersion: 1 }));
    expect(completeTask(done, undefined, [], context(), { expectedVersion: 2 })).toBeNull();
    const trashed = record({ status: 'deleted', version: 2 });
    expect(trashTask(trashed, context())).toBeNull();
    stale(trashed, () => trashTask(trashed, context(), 1));
  });

  it('before the other refusals: a stale version wins over "not in the trash" and "blocked"', () => {
    const open = record({ version: 2, dependencies: ['d1'] });
    stale(open, () => restoreTask(open, context(), 1));
    stale(open, () => assertPurgeable(open, 1));
    stale(open, () => completeTask(open, undefined, ['d1'], context(), { expectedVersion: 1 }));
  });
});

describe('a purged next occurrence is made again [TASK-3] [CHAT-15]', () => {
  it('a task whose next occurrence is gone makes a new one when completed again; one whose occurrence exists does not', () => {
    const monthly = record({ deadline: '2027-01-31', recurrence: { type: 'monthly', interval: 1, endDate: null }, seriesDay: 31 });
    const first = completeTask(monthly, undefined, [], context(40))!;
    const reopened = patchTask(first.task, { status: 'not_started' }, undefined, undefined, context(50))!;
    expect(completeTask(reopened, undefined, [], context(60), { nextOccurrenceExists: true })!.next).toBeNull();
    const again = completeTask(reopened, undefined, [], context(60), { nextOccurrenceExists: false })!;
    expect(again.next).toMatchObject({ deadline: '2027-02-28', seriesDay: 31, version: 1, seq: 62 });
    expect(again.next!.id).not.toBe(first.next!.id);
    expect(again.task.nextOccurrenceId).toBe(again.next!.id);
  });
});

describe('reminders follow their task [REM-5] [REM-6] [REM-7]', () => {
  const at = (iso: string) => new Date(iso);

  it('setting remindAt gives the task a new reminder id each time; the same time again is no change; null clears', () => {
    const created = createTask(userId, 'id-r', { title: 'Call Ana', remindAt: '2026-12-06T12:00:00.000Z' }, [], context());
    expect(created).toMatchObject({ remindAt: at('2026-12-06T12:00:00.000Z'), reminderId: expect.any(String) });
    expect(toWireTask(created).remindAt).toBe('2026-12-06T12:00:00.000Z');
    expect(patchTask(created, { remindAt: '2026-12-06T12:00:00Z' }, undefined, undefined, context())).toBeNull();
    const moved = patchTask(created, { remindAt: '2026-12-06T13:00:00.000Z' }, undefined, undefined, context())!;
    expect(moved.reminderId).not.toBe(created.reminderId);
    const cleared = patchTask(moved, { remindAt: null }, undefined, undefined, context())!;
    expect(cleared).toMatchObject({ remindAt: null, reminderId: null });
  });

  it('completing or trashing clears the reminder, and restoring does not bring it back', () => {
    const task = record({ remindAt: at('2026-12-07T09:00:00.000Z'), reminderId: 'r-1' });
    expect(completeTask(task, undefined, [], context())!.task).toMatchObject({ remindAt: null, reminderId: null });
    const trashed = trashTask(task, context())!;
    expect(trashed).toMatchObject({ remindAt: null, reminderId: null });
    expect(restoreTask(trashed, context())).toMatchObject({ remindAt: null, reminderId: null });
  });

  it('a recurring task\'s next occurrence is reminded at the same wall-clock offset before its deadline, across DST', () => {
    const task = record({
      deadline: '2026-03-07',
      recurrence: { type: 'daily', interval: 1, endDate: null },
      remindAt: at('2026-03-06T22:30:00.000Z'), // 17:30 the day before, New York winter time (UTC-5)
      reminderId: 'r-1',
    });
    const ctx = { ...context(), timeZone: 'America/New_York' };
    const { next } = completeTask(task, undefined, [], ctx)!;
    // The next deadline is 8 March, the night the clocks go forward: 17:30 the day before is still winter time.
    expect(next).toMatchObject({ deadline: '2026-03-08', remindAt: at('2026-03-07T22:30:00.000Z') });
    const after = completeTask({ ...next!, deadline: '2026-03-08' }, undefined, [], ctx)!.next!;
    expect(after).toMatchObject({ deadline: '2026-03-09', remindAt: at('2026-03-08T21:30:00.000Z') }); // summer time, UTC-4
    expect(after.reminderId).not.toBe(next!.reminderId);
  });

  it('reminderChanges lists the new reminders (late when their time has passed) and what the tabs should drop', () => {
    const before = record({ remindAt: at('2026-12-06T12:00:00.000Z'), reminderId: 'old' });
    const moved = { ...before, remindAt: at('2026-12-06T09:00:00.000Z'), reminderId: 'new' };
    expect(reminderChanges([before], [moved], now)).toEqual({
      writes: { set: [{ id: 'new', taskId: before.id, firesAt: moved.remindAt, late: true }], cleared: [] },
      gone: ['old'],
    });
    expect(reminderChanges([before], [{ ...before, remindAt: null, reminderId: null }], now)).toEqual({ writes: { set: [], cleared: ['old'] }, gone: ['old'] });
    expect(reminderChanges([before], [{ ...before, title: 'same reminder' }], now)).toBeUndefined();
    const fresh = record({ id: 'other', remindAt: at('2026-12-07T09:00:00.000Z'), reminderId: 'r-2' });
    expect(reminderChanges([undefined], [fresh], now)?.writes.set).toEqual([{ id: 'r-2', taskId: 'other', firesAt: fresh.remindAt, late: false }]);
  });
});
