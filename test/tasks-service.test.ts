import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabaseUrl } from './support/env.js';
import { MikroORM } from '@mikro-orm/postgresql';
import { ormOptions } from '../server/db/orm.js';
import { createPostgres, type Sql } from '../server/db/postgres.js';
import { AppError, ErrorCode } from '../server/errors.js';
import { UserSchema } from '../server/features/auth/user.entity.js';
import type { Task, TaskChanged, TaskRemoved } from '../shared/schemas/tasks.js';
import { createTasksRepository } from '../server/features/tasks/tasks.repository.js';
import { createTasksService, type TaskEvents, type TasksService } from '../server/features/tasks/tasks.service.js';

let orm: MikroORM;
let pg: Sql;

beforeAll(async () => {
  orm = await MikroORM.init(ormOptions({ databaseUrl: testDatabaseUrl() }));
  pg = createPostgres(testDatabaseUrl(), { max: 4 });
});
afterAll(async () => {
  await orm?.close(true);
  await pg?.end();
});

type Recorded =
  | { kind: 'changed'; userId: string; seq: number; task: Task }
  | { kind: 'removed'; userId: string; seq: number; id: string };

/** The boundary to the realtime layer, recording what would be broadcast. */
class RecordingEvents implements TaskEvents {
  readonly log: Recorded[] = [];
  /** what a separate connection saw of each changed task when its event came */
  readonly committedChecks: Promise<{ seq: number; stored: number | undefined }>[] = [];

  changed(userId: string, data: TaskChanged): void {
    this.log.push({ kind: 'changed', userId, seq: data.seq, task: data.task });
    this.committedChecks.push(
      orm.em
        .fork()
        .execute<{ seq: number }[]>('select seq from tasks where id = ?', [data.task.id])
        .then((rows) => ({ seq: data.seq, stored: rows[0]?.seq })),
    );
  }

  removed(userId: string, data: TaskRemoved): void {
    this.log.push({ kind: 'removed', userId, seq: data.seq, id: data.id });
  }

  readonly remindersCleared: { userId: string; id: string }[] = [];
  readonly remindersScheduled: Date[] = [];

  reminderCleared(userId: string, id: string): void {
    this.remindersCleared.push({ userId, id });
  }

  reminderScheduled(firesAt: Date): void {
    this.remindersScheduled.push(firesAt);
  }

  of(userId: string): Recorded[] {
    return this.log.filter((e) => e.userId === userId);
  }

  clear(): void {
    this.log.length = 0;
  }
}

interface Fixture {
  service: TasksService;
  events: RecordingEvents;
  userId: string;
}

async function newUser(timezone = 'UTC'): Promise<string> {
  const em = orm.em.fork();
  const user = em.create(UserSchema, { id: randomUUID(), email: `${randomUUID()}@example.test`, passwordHash: 'x', timezone });
  await em.flush();
  return user.id;
}

async function fixture(options: { timezone?: string; now?: Date } = {}): Promise<Fixture> {
  const events = new RecordingEvents();
  const now = options.now;
  const service = createTasksService({ tasks: createTasksRepository(pg), events, ...(now ? { now: () => now } : {}) });
  return { service, events, userId: await newUser(options.timezone) };
}

async function failure(promise: Promise<unknown>, code: ErrorCode): Promise<AppError> {
  const err = await promise.then(
    () => new Error('expected the call to fail'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  expect((err as AppError).code).toBe(code);
  return err as AppError;
}

async function sql<T = Record<string, unknown>>(query: string, params: unknown[] = []): Promise<T[]> {
  return orm.em.fork().execute<T[]>(query, params);
}

describe('tasks service', () => {
  describe('create [TASK-1]', () => {
    it('[TASK-1] create stores the task with version 1, the next seq, defaults, and broadcasts it', async () => {
      const { service, events, userId } = await fixture();
      const { task, created } = await service.create(userId, { title: '  Buy milk ' });
      expect(created).toBe(true);
      expect(task).toMatchObject({
        title: 'Buy milk',
        description: '',
        deadline: null,
        intensity: 3,
        status: 'not_started',
        project: null,
        waitingOn: null,
        dependencies: [],
        recurrence: null,
        version: 1,
        seq: 1,
        completedAt: null,
        deletedAt: null,
      });
      expect(task.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(task.updatedAt).toBe(task.createdAt);
      expect(events.log).toEqual([{ kind: 'changed', userId, seq: 1, task }]);
      expect(await service.findOwned(userId, task.id)).toEqual(task);
      expect(await service.currentSeq(userId)).toBe(1);
    });

    it('[TASK-1] create with a known id returns the existing task unchanged and broadcasts nothing', async () => {
      const { service, events, userId } = await fixture();
      const id = randomUUID();
      const first = await service.create(userId, { id, title: 'Original', deadline: '2026-12-01' });
      events.clear();
      const again = await service.create(userId, { id, title: 'Other title', intensity: 5 });
      expect(again).toEqual({ task: first.task, created: false });
      expect(await service.create(userId, { id: id.toUpperCase(), title: 'Shouting' })).toEqual({ task: first.task, created: false });
      expect(events.log).toEqual([]);
      expect(await service.currentSeq(userId)).toBe(1);
      expect(await service.findOwned(userId, id)).toEqual(first.task);
    });

    it("[TASK-1] create with an id owned by another user is CONFLICT and leaves that task alone", async () => {
      const a = await fixture();
      const b = await fixture();
      const id = randomUUID();
      const { task } = await a.service.create(a.userId, { id, title: 'Mine' });
      const err = await failure(b.service.create(b.userId, { id, title: 'Yours' }), ErrorCode.CONFLICT);
      expect(JSON.stringify(err.toWire())).not.toContain('Mine');
      expect(b.events.log).toEqual([]);
      expect(await b.service.currentSeq(b.userId)).toBe(0);
      expect(await a.service.findOwned(a.userId, id)).toEqual(task);
    });

    it('[TASK-1] two users racing for one new id: one wins, the other gets CONFLICT', async () => {
      const a = await fixture();
      const b = await fixture();
      const id = randomUUID();
      const results = await Promise.allSettled([a.service.create(a.userId, { id, title: 'A' }), b.service.create(b.userId, { id, title: 'B' })]);
      const ok = results.filter((r) => r.status === 'fulfilled');
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(ok).toHaveLength(1);
      expect(failed).toHaveLength(1);
      expect((failed[0]!.reason as AppError).code).toBe(ErrorCode.CONFLICT);
    });

    it('create guesses intensity from the title when none is given', async () => {
      const { service, userId } = await fixture();
      expect((await service.create(userId, { title: 'Research vendors' })).task.intensity).toBe(4);
      expect((await service.create(userId, { title: 'Call the plumber' })).task.intensity).toBe(2);
      expect((await service.create(userId, { title: 'Water plants' })).task.intensity).toBe(3);
      expect((await service.create(userId, { title: 'Research vendors', intensity: 1 })).task.intensity).toBe(1);
    });

    it('create fills waitingOn from "waiting for/on X" in the title unless given', async () => {
      const { service, userId } = await fixture();
      expect((await service.create(userId, { title: 'Visa: waiting for the embassy' })).task.waitingOn).toBe('the embassy');
      expect((await service.create(userId, { title: 'Waiting on Sam' })).task.waitingOn).toBe('Sam');
      expect((await service.create(userId, { title: 'Waiting on Sam', waitingOn: 'Alex' })).task.waitingOn).toBe('Alex');
      expect((await service.create(userId, { title: 'Waiting on Sam', waitingOn: null })).task.waitingOn).toBeNull();
    });

    it('create keeps every given field', async () => {
      const { service, userId } = await fixture();
      const dep = (await service.create(userId, { title: 'First' })).task;
      const { task } = await service.create(userId, {
        title: 'Second',
        description: 'Details',
        deadline: '2027-01-31',
        intensity: 5,
        status: 'in_progress',
        project: 'Home',
        waitingOn: '',
        dependencies: [dep.id, dep.id],
        recurrence: { type: 'monthly', interval: 1, endDate: null },
      });
      expect(task).toMatchObject({
        description: 'Details',
        deadline: '2027-01-31',
        intensity: 5,
        status: 'in_progress',
        project: 'Home',
        waitingOn: null,
        dependencies: [dep.id],
        recurrence: { type: 'monthly', interval: 1, endDate: null },
      });
      const stored = await sql<{ recurrence: unknown }>('select recurrence from tasks where id = ?', [task.id]);
      expect(stored[0]?.recurrence).toEqual({ type: 'monthly', interval: 1, endDate: null });
    });
  });

  describe('update [TASK-2]', () => {
    it('[TASK-2] every update bumps version by exactly 1 and takes the next seq', async () => {
      const { service, events, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'Draft' });
      const v2 = (await service.update(userId, { id: task.id, patch: { title: 'Draft 2', deadline: '2026-12-24' } })).task;
      const v3 = (await service.update(userId, { id: task.id, expectedVersion: 2, patch: { status: 'in_progress', project: 'Work' } })).task;
      expect([v2.version, v2.seq, v3.version, v3.seq]).toEqual([2, 2, 3, 3]);
      expect(v3).toMatchObject({ title: 'Draft 2', deadline: '2026-12-24', status: 'in_progress', project: 'Work' });
      expect(Date.parse(v3.updatedAt)).toBeGreaterThanOrEqual(Date.parse(task.updatedAt));
      expect(v3.createdAt).toBe(task.createdAt);
      expect(events.log.map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(events.log[2]).toEqual({ kind: 'changed', userId, seq: 3, task: v3 });
    });

    it('[TASK-2] a stale expectedVersion is CONFLICT with the current task in details.task and changes nothing', async () => {
      const { service, events, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'A' });
      const current = (await service.update(userId, { id: task.id, patch: { title: 'B' } })).task;
      events.clear();
      const err = await failure(service.update(userId, { id: task.id, expectedVersion: 1, patch: { title: 'C' } }), ErrorCode.CONFLICT);
      expect(err.details?.task).toEqual(current);
      expect(err.toWire().details).toEqual({ task: current });
      await failure(service.update(userId, { id: task.id, expectedVersion: 3, patch: {} }), ErrorCode.CONFLICT);
      expect(events.log).toEqual([]);
      expect(await service.findOwned(userId, task.id)).toEqual(current);
    });

    it('[TASK-2] a patch that changes nothing is no change: same version, no seq, no event', async () => {
      const { service, events, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'Same', project: 'P' });
      events.clear();
      expect((await service.update(userId, { id: task.id, patch: {} })).task).toEqual(task);
      expect((await service.update(userId, { id: task.id, expectedVersion: 1, patch: { title: 'Same', project: 'P', dependencies: [] } })).task).toEqual(task);
      expect(events.log).toEqual([]);
      expect(await service.currentSeq(userId)).toBe(1);
    });

    it('[TASK-2] concurrent updates with the same expectedVersion: exactly one wins', async () => {
      const { service, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'Race' });
      const results = await Promise.allSettled(
        Array.from({ length: 5 }, (_, i) => service.update(userId, { id: task.id, expectedVersion: 1, patch: { title: `T${i}` } })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect((r.reason as AppError).code).toBe(ErrorCode.CONFLICT);
      expect((await service.findOwned(userId, task.id)).version).toBe(2);
    });

    it('updating a deleted task is CONFLICT', async () => {
      const { service, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'Gone' });
      await service.remove(userId, task.id);
      await failure(service.update(userId, { id: task.id, patch: { title: 'Back?' } }), ErrorCode.CONFLICT);
    });

    it('moving a completed task back to another status clears completedAt', async () => {
      const { service, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'Done?' });
      const done = (await service.complete(userId, { id: task.id })).task;
      expect(done.completedAt).not.toBeNull();
      const edited = (await service.update(userId, { id: task.id, patch: { title: 'Done, renamed' } })).task;
      expect(edited).toMatchObject({ status: 'completed', completedAt: done.completedAt });
      const reopened = (await service.update(userId, { id: task.id, patch: { status: 'in_progress' } })).task;
      expect(reopened).toMatchObject({ status: 'in_progress', completedAt: null, version: 4 });
    });

    it('update may clear nullable fields', async () => {
      const { service, userId } = await fixture();
      const { task } = await service.create(userId, {
        title: 'Full',
        deadline: '2026-12-01',
        project: 'X',
        waitingOn: 'Y',
        recurrence: { type: 'weekly', interval: 1, endDate: null },
      });
      const cleared = (await service.update(userId, { id: task.id, patch: { deadline: null, project: null, waitingOn: null, recurrence: null } })).task;
      expect(cleared).toMatchObject({ deadline: null, project: null, waitingOn: null, recurrence: null, version: 2 });
    });
  });

  describe('complete [TASK-3]', () => {
    it('[TASK-3] completing sets completedAt and appends the notes to the description', async () => {
      const { service, events, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'Report', description: 'Quarterly' });
      const { task: done, next } = await service.complete(userId, { id: task.id, notes: 'Sent to Kim' });
      expect(next).toBeNull();
      expect(done).toMatchObject({ status: 'completed', description: 'Quarterly\n\nCompleted: Sent to Kim', version: 2, seq: 2 });
      expect(Date.parse(done.completedAt!)).toBeGreaterThan(Date.now() - 60_000);
      expect(events.log.map((e) => e.seq)).toEqual([1, 2]);
    });

    it('[TASK-3] completing without notes leaves the description as it was', async () => {
      const { service, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'Plain', description: 'Keep me' });
      expect((await service.complete(userId, { id: task.id })).task.description).toBe('Keep me');
      const other = (await service.create(userId, { title: 'Blank notes', description: 'D' })).task;
      expect((await service.complete(userId, { id: other.id, notes: '   ' })).task.description).toBe('D');
    });

    it('[TASK-3] completing an already completed task is ok with next null and changes nothing', async () => {
      const { service, events, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'Twice', deadline: '2026-12-01', recurrence: { type: 'daily', interval: 1, endDate: null } });
      const first = await service.complete(userId, { id: task.id, notes: 'once' });
      expect(first.next).not.toBeNull();
      events.clear();
      const second = await service.complete(userId, { id: task.id, notes: 'twice' });
      expect(second).toEqual({ task: first.task, next: null, previous: first.task });
      expect(events.log).toEqual([]);
      expect(await service.currentSeq(userId)).toBe(3);
      expect((await service.list(userId, { view: 'active' })).tasks).toHaveLength(1);
    });

    it('[TASK-3] completing a monthly task due 31 Jan creates one next occurrence due 28 Feb, then 31 Mar', async () => {
      const { service, events, userId } = await fixture();
      const dep = (await service.create(userId, { title: 'Prep' })).task;
      await service.complete(userId, { id: dep.id });
      const { task } = await service.create(userId, {
        title: 'Pay rent',
        description: 'Landlord',
        deadline: '2027-01-31',
        intensity: 2,
        status: 'in_progress',
        project: 'Home',
        waitingOn: 'Bank',
        dependencies: [dep.id],
        recurrence: { type: 'monthly', interval: 1, endDate: null },
      });
      events.clear();
      const { task: done, next } = await service.complete(userId, { id: task.id, notes: 'paid' });
      expect(done).toMatchObject({ status: 'completed', seq: 4, description: 'Landlord\n\nCompleted: paid' });
      expect(next).not.toBeNull();
      expect(next).toMatchObject({
        title: 'Pay rent',
        description: 'Landlord',
        deadline: '2027-02-28',
        intensity: 2,
        status: 'not_started',
        project: 'Home',
        waitingOn: null,
        dependencies: [],
        recurrence: { type: 'monthly', interval: 1, endDate: null },
        version: 1,
        seq: 5,
        completedAt: null,
        deletedAt: null,
      });
      expect(next!.id).not.toBe(task.id);
      // two changes, two seqs, two events, in order
      expect(events.log).toEqual([
        { kind: 'changed', userId, seq: 4, task: done },
        { kind: 'changed', userId, seq: 5, task: next },
      ]);
      const third = await service.complete(userId, { id: next!.id });
      expect(third.next?.deadline).toBe('2027-03-31');
      const fourth = await service.complete(userId, { id: third.next!.id });
      expect(fourth.next?.deadline).toBe('2027-04-30');
      expect((await service.list(userId, { view: 'active' })).tasks.map((t) => t.deadline)).toEqual(['2027-04-30']);
    });

    it('[TASK-3] a monthly series from 31 Jan 2028 goes to 29 Feb in the leap year', async () => {
      const { service, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'Leap', deadline: '2028-01-31', recurrence: { type: 'monthly', interval: 1, endDate: null } });
      const { next } = await service.complete(userId, { id: task.id });
      expect(next?.deadline).toBe('2028-02-29');
      expect((await service.complete(userId, { id: next!.id })).next?.deadline).toBe('2028-03-31');
    });

    it('[TASK-3] weekly, daily and yearly series advance by their interval', async () => {
      const { service, userId } = await fixture();
      const cases = [
        [{ type: 'weekly', interval: 2, endDate: null }, '2026-12-28', '2027-01-11'],
        [{ type: 'daily', interval: 1, endDate: null }, '2026-12-31', '2027-01-01'],
        [{ type: 'yearly', interval: 1, endDate: null }, '2028-02-29', '2029-02-28'],
      ] as const;
      for (const [recurrence, deadline, expected] of cases) {
        const { task } = await service.create(userId, { title: recurrence.type, deadline, recurrence: { ...recurrence } });
        expect((await service.complete(userId, { id: task.id })).next?.deadline).toBe(expected);
      }
    });

    it('[TASK-3] no occurrence past endDate; one on endDate is created', async () => {
      const { service, events, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'Ends', deadline: '2026-12-01', recurrence: { type: 'weekly', interval: 1, endDate: '2026-12-08' } });
      const first = await service.complete(userId, { id: task.id });
      expect(first.next?.deadline).toBe('2026-12-08');
      events.clear();
      const second = await service.complete(userId, { id: first.next!.id });
      expect(second.next).toBeNull();
      expect(events.log).toHaveLength(1);
    });

    it('[TASK-3] a recurring task without a deadline creates no next occurrence', async () => {
      const { service, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'Whenever', recurrence: { type: 'daily', interval: 1, endDate: null } });
      expect((await service.complete(userId, { id: task.id })).next).toBeNull();
    });

    it('[TASK-3] reopening and completing again creates no second next occurrence', async () => {
      const { service, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'Once', deadline: '2026-12-01', recurrence: { type: 'daily', interval: 1, endDate: null } });
      expect((await service.complete(userId, { id: task.id })).next).not.toBeNull();
      await service.update(userId, { id: task.id, patch: { status: 'not_started' } });
      expect((await service.complete(userId, { id: task.id })).next).toBeNull();
      expect((await service.exportAll(userId)).filter((t) => t.title === 'Once')).toHaveLength(2);
    });

    it('completing a deleted task is CONFLICT', async () => {
      const { service, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'Trash' });
      await service.remove(userId, task.id);
      await failure(service.complete(userId, { id: task.id }), ErrorCode.CONFLICT);
    });

    it('completing a task with unfinished dependencies is CONFLICT with details.blockedBy', async () => {
      const { service, events, userId } = await fixture();
      const a = (await service.create(userId, { title: 'A' })).task;
      const b = (await service.create(userId, { title: 'B' })).task;
      const c = (await service.create(userId, { title: 'C', dependencies: [a.id, b.id] })).task;
      await service.complete(userId, { id: a.id });
      events.clear();
      const err = await failure(service.complete(userId, { id: c.id }), ErrorCode.CONFLICT);
      expect(err.details).toEqual({ blockedBy: [b.id] });
      expect(events.log).toEqual([]);
      await service.complete(userId, { id: b.id });
      expect((await service.complete(userId, { id: c.id })).task.status).toBe('completed');
    });

    it('a purged dependency no longer blocks completion', async () => {
      const { service, userId } = await fixture();
      const a = (await service.create(userId, { title: 'A' })).task;
      const c = (await service.create(userId, { title: 'C', dependencies: [a.id] })).task;
      await service.remove(userId, a.id);
      await failure(service.complete(userId, { id: c.id }), ErrorCode.CONFLICT);
      await service.purge(userId, a.id);
      expect((await service.complete(userId, { id: c.id })).task).toMatchObject({ status: 'completed', dependencies: [a.id] });
    });
  });

  describe('delete, restore, purge [TASK-4]', () => {
    it('[TASK-4] delete is soft and restore brings back the status it had before', async () => {
      const { service, events, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'Soft', status: 'in_progress' });
      const deleted = (await service.remove(userId, task.id)).task;
      expect(deleted).toMatchObject({ status: 'deleted', version: 2, seq: 2 });
      expect(deleted.deletedAt).not.toBeNull();
      expect((await service.list(userId, { view: 'deleted' })).tasks).toEqual([deleted]);
      const restored = (await service.restore(userId, task.id)).task;
      expect(restored).toMatchObject({ status: 'in_progress', deletedAt: null, version: 3, seq: 3 });
      expect(events.log.map((e) => [e.kind, e.seq])).toEqual([
        ['changed', 1],
        ['changed', 2],
        ['changed', 3],
      ]);
    });

    it('[TASK-4] restore brings back even completed, with its completedAt', async () => {
      const { service, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'Was done' });
      const done = (await service.complete(userId, { id: task.id })).task;
      await service.remove(userId, task.id);
      const restored = (await service.restore(userId, task.id)).task;
      expect(restored).toMatchObject({ status: 'completed', completedAt: done.completedAt, deletedAt: null });
    });

    it('[TASK-4] deleting what is already in the trash changes nothing', async () => {
      const { service, events, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'Twice' });
      const deleted = (await service.remove(userId, task.id)).task;
      events.clear();
      expect((await service.remove(userId, task.id)).task).toEqual(deleted);
      expect(events.log).toEqual([]);
    });

    it('[TASK-4] restoring or purging a task not in the trash is CONFLICT', async () => {
      const { service, events, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'Here' });
      events.clear();
      await failure(service.restore(userId, task.id), ErrorCode.CONFLICT);
      await failure(service.purge(userId, task.id), ErrorCode.CONFLICT);
      await service.complete(userId, { id: task.id });
      await failure(service.purge(userId, task.id), ErrorCode.CONFLICT);
      expect(events.log).toHaveLength(1);
      expect(await service.findOwned(userId, task.id)).toMatchObject({ status: 'completed' });
    });

    it('[TASK-4] purge removes the task for good, writes a tombstone and broadcasts task:removed', async () => {
      const { service, events, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'Bye' });
      await service.remove(userId, task.id);
      events.clear();
      expect(await service.purge(userId, task.id)).toEqual({ id: task.id });
      expect(events.log).toEqual([{ kind: 'removed', userId, seq: 3, id: task.id }]);
      await failure(service.findOwned(userId, task.id), ErrorCode.NOT_FOUND);
      await failure(service.purge(userId, task.id), ErrorCode.NOT_FOUND);
      const tombstones = await sql<{ task_id: string; seq: number }>('select task_id, seq from task_tombstones where user_id = ?', [userId]);
      expect(tombstones).toEqual([{ task_id: task.id, seq: 3 }]);
    });
  });

  describe('next [TASK-5]', () => {
    it('[TASK-5] picks by score with days counted in the user time zone', async () => {
      // 2026-11-29 11:30 UTC is already 30 Nov in Auckland
      const { service, userId } = await fixture({ timezone: 'Pacific/Auckland', now: new Date('2026-11-29T11:30:00Z') });
      expect(await service.next(userId, {})).toEqual({ task: null, score: null });
      const overdue = (await service.create(userId, { title: 'Due 29th', deadline: '2026-11-29', intensity: 1 })).task; // 100 + 5
      const today = (await service.create(userId, { title: 'Due 30th', deadline: '2026-11-30', intensity: 3, status: 'in_progress' })).task; // 90+15+15
      const heavy = (await service.create(userId, { title: 'Heavy', deadline: '2026-12-20', intensity: 5 })).task; // 10 + 25
      expect(await service.next(userId, {})).toEqual({ task: today, score: 120 });
      expect(await service.next(userId, { intensity: 'light' })).toEqual({ task: overdue, score: 105 });
      expect(await service.next(userId, { intensity: 'heavy' })).toEqual({ task: heavy, score: 35 });
      expect(await service.next(userId, { intensity: 'medium' })).toEqual({ task: today, score: 120 });
    });

    it('[TASK-5] leaves out waiting, completed, deleted and blocked tasks', async () => {
      const { service, userId } = await fixture({ now: new Date('2026-11-29T12:00:00Z') });
      const dep = (await service.create(userId, { title: 'Dep', intensity: 1 })).task;
      await service.create(userId, { title: 'Blocked', deadline: '2026-11-01', intensity: 5, dependencies: [dep.id] });
      await service.create(userId, { title: 'Waiting', deadline: '2026-11-01', status: 'waiting_on' });
      const done = (await service.create(userId, { title: 'Done', deadline: '2026-11-01' })).task;
      await service.complete(userId, { id: done.id });
      const trashed = (await service.create(userId, { title: 'Trashed', deadline: '2026-11-01' })).task;
      await service.remove(userId, trashed.id);
      expect((await service.next(userId, {})).task?.id).toBe(dep.id);
      await service.complete(userId, { id: dep.id });
      expect(await service.next(userId, {})).toMatchObject({ task: { title: 'Blocked' }, score: 125 });
    });
  });

  describe('views', () => {
    it('active: open and waiting tasks by deadline (none last), then creation', async () => {
      const { service, userId } = await fixture();
      const none = (await service.create(userId, { title: 'none' })).task;
      const late = (await service.create(userId, { title: 'late', deadline: '2027-02-01' })).task;
      const early = (await service.create(userId, { title: 'early', deadline: '2026-12-01' })).task;
      const waiting = (await service.create(userId, { title: 'waiting', deadline: '2027-02-01', status: 'waiting_on' })).task;
      const done = (await service.create(userId, { title: 'done' })).task;
      await service.complete(userId, { id: done.id });
      const gone = (await service.create(userId, { title: 'gone' })).task;
      await service.remove(userId, gone.id);
      const list = await service.list(userId, {});
      expect(list.tasks.map((t) => t.id)).toEqual([early.id, late.id, waiting.id, none.id]);
      expect(list.seq).toBe(await service.currentSeq(userId));
      expect((await service.list(userId, { view: 'active' })).tasks).toEqual(list.tasks);
    });

    it('upcoming: active tasks due within `days` in the user time zone, overdue included, by deadline', async () => {
      // 07:30 UTC on 30 Nov is still 29 Nov in Los Angeles
      const { service, userId } = await fixture({ timezone: 'America/Los_Angeles', now: new Date('2026-11-30T07:30:00Z') });
      const titles = async (days?: number) => (await service.list(userId, { view: 'upcoming', ...(days ? { days } : {}) })).tasks.map((t) => t.title);
      await service.create(userId, { title: 'd+7', deadline: '2026-12-06' });
      await service.create(userId, { title: 'd+8', deadline: '2026-12-07' });
      await service.create(userId, { title: 'overdue', deadline: '2026-10-01' });
      await service.create(userId, { title: 'today', deadline: '2026-11-29' });
      await service.create(userId, { title: 'd+1', deadline: '2026-11-30' });
      await service.create(userId, { title: 'no deadline' });
      const done = (await service.create(userId, { title: 'done', deadline: '2026-11-30' })).task;
      await service.complete(userId, { id: done.id });
      expect(await titles()).toEqual(['overdue', 'today', 'd+1', 'd+7']);
      expect(await titles(1)).toEqual(['overdue', 'today', 'd+1']);
      expect(await titles(8)).toEqual(['overdue', 'today', 'd+1', 'd+7', 'd+8']);
    });

    it('waiting: least recently updated first', async () => {
      const { service, userId } = await fixture();
      const a = (await service.create(userId, { title: 'a', status: 'waiting_on' })).task;
      const b = (await service.create(userId, { title: 'b', status: 'waiting_on' })).task;
      await service.create(userId, { title: 'c' });
      await new Promise((r) => setTimeout(r, 5));
      await service.update(userId, { id: a.id, patch: { waitingOn: 'Bob' } });
      expect((await service.list(userId, { view: 'waiting' })).tasks.map((t) => t.id)).toEqual([b.id, a.id]);
    });

    it('completed and deleted: newest first', async () => {
      const { service, userId } = await fixture();
      const ids: string[] = [];
      for (const title of ['x', 'y', 'z']) {
        const { task } = await service.create(userId, { title });
        ids.push(task.id);
        await new Promise((r) => setTimeout(r, 5));
      }
      for (const id of ids) {
        await service.complete(userId, { id });
        await new Promise((r) => setTimeout(r, 5));
      }
      expect((await service.list(userId, { view: 'completed' })).tasks.map((t) => t.id)).toEqual([...ids].reverse());
      for (const id of [ids[1]!, ids[0]!]) {
        await service.remove(userId, id);
        await new Promise((r) => setTimeout(r, 5));
      }
      expect((await service.list(userId, { view: 'deleted' })).tasks.map((t) => t.id)).toEqual([ids[0], ids[1]]);
      expect((await service.list(userId, { view: 'completed' })).tasks.map((t) => t.id)).toEqual([ids[2]]);
    });

    it('project filter is an exact match', async () => {
      const { service, userId } = await fixture();
      await service.create(userId, { title: 'a', project: 'Home' });
      await service.create(userId, { title: 'b', project: 'home' });
      await service.create(userId, { title: 'c', project: 'Home office' });
      await service.create(userId, { title: 'd' });
      expect((await service.list(userId, { project: 'Home' })).tasks.map((t) => t.title)).toEqual(['a']);
    });
  });

  describe('ownership [TASK-6]', () => {
    it('[TASK-6] a change\'s dependency checks read only the tasks its new dependencies reach, never the user\'s whole graph', async () => {
      const repo = createTasksRepository(pg);
      const { service, userId } = await fixture();
      const base = (await service.create(userId, { title: 'Base' })).task;
      const mid = (await service.create(userId, { title: 'Mid', dependencies: [base.id] })).task;
      for (let i = 0; i < 20; i++) await service.create(userId, { title: `Unrelated ${i}` });
      const state = await repo.readForChange(userId, { taskId: base.id, graphFrom: [mid.id.toUpperCase()] });
      expect(state?.graph && Object.fromEntries(state.graph)).toEqual({ [mid.id]: [base.id], [base.id]: [] });
      // What they read is enough to see a cycle through it, and an unknown id.
      await failure(service.update(userId, { id: base.id, patch: { dependencies: [mid.id] } }), ErrorCode.VALIDATION);
      await failure(service.update(userId, { id: base.id, patch: { dependencies: [randomUUID()] } }), ErrorCode.VALIDATION);
      expect((await service.update(userId, { id: mid.id, patch: { dependencies: [] } })).task.dependencies).toEqual([]);
    });

    it("[TASK-6] another user's task id is NOT_FOUND for every method, and nothing changes", async () => {
      const owner = await fixture();
      const other = await fixture();
      const { task } = await owner.service.create(owner.userId, { title: 'Private' });
      await owner.service.remove(owner.userId, task.id);
      const trashed = await owner.service.findOwned(owner.userId, task.id);
      const s = other.service;
      const u = other.userId;
      await failure(s.findOwned(u, task.id), ErrorCode.NOT_FOUND);
      await failure(s.update(u, { id: task.id, patch: { title: 'Mine now' } }), ErrorCode.NOT_FOUND);
      await failure(s.complete(u, { id: task.id }), ErrorCode.NOT_FOUND);
      await failure(s.remove(u, task.id), ErrorCode.NOT_FOUND);
      await failure(s.restore(u, task.id), ErrorCode.NOT_FOUND);
      await failure(s.purge(u, task.id), ErrorCode.NOT_FOUND);
      await failure(s.findOwned(u, 'not-a-uuid'), ErrorCode.NOT_FOUND);
      await failure(s.update(u, { id: randomUUID(), patch: {} }), ErrorCode.NOT_FOUND);
      for (const view of ['active', 'upcoming', 'waiting', 'completed', 'deleted'] as const) {
        expect((await s.list(u, { view })).tasks).toEqual([]);
      }
      expect(await s.next(u, {})).toEqual({ task: null, score: null });
      expect(await s.sync(u, 0)).toEqual({ seq: 0, tasks: [], removed: [] });
      expect(await s.exportAll(u)).toEqual([]);
      expect(other.events.log).toEqual([]);
      expect(await owner.service.findOwned(owner.userId, task.id)).toEqual(trashed);
    });

    it("[TASK-6] dependencies on another user's, unknown, the same or a cyclic task are VALIDATION on the dependencies field", async () => {
      const { service, events, userId } = await fixture();
      const other = await fixture();
      const foreign = (await other.service.create(other.userId, { title: 'Foreign' })).task;
      const a = (await service.create(userId, { title: 'A' })).task;
      const b = (await service.create(userId, { title: 'B', dependencies: [a.id] })).task;
      events.clear();
      const create = await failure(service.create(userId, { title: 'X', dependencies: [foreign.id] }), ErrorCode.VALIDATION);
      expect(create.issues).toEqual([{ path: 'dependencies', message: expect.any(String) }]);
      await failure(service.create(userId, { title: 'X', dependencies: [randomUUID()] }), ErrorCode.VALIDATION);
      const selfId = randomUUID();
      await failure(service.create(userId, { id: selfId, title: 'Self', dependencies: [selfId] }), ErrorCode.VALIDATION);
      const self = await failure(service.update(userId, { id: a.id, patch: { dependencies: [a.id] } }), ErrorCode.VALIDATION);
      expect(self.issues?.[0]?.path).toBe('patch.dependencies');
      const cycle = await failure(service.update(userId, { id: a.id, patch: { dependencies: [b.id] } }), ErrorCode.VALIDATION);
      expect(cycle.issues?.[0]?.message).toMatch(/cycle/);
      const c = (await service.create(userId, { title: 'C', dependencies: [b.id] })).task;
      await failure(service.update(userId, { id: a.id, patch: { dependencies: [c.id] } }), ErrorCode.VALIDATION);
      expect(events.log.map((e) => e.seq)).toEqual([c.seq]);
      expect((await service.findOwned(userId, a.id)).dependencies).toEqual([]);
    });

    it("a user's own deleted task may be a dependency", async () => {
      const { service, userId } = await fixture();
      const a = (await service.create(userId, { title: 'A' })).task;
      await service.remove(userId, a.id);
      expect((await service.create(userId, { title: 'B', dependencies: [a.id] })).task.dependencies).toEqual([a.id]);
    });
  });

  describe('sequence and sync [SYNC-1, SYNC-2]', () => {
    it('[SYNC-1] 10 concurrent creates of one user take seqs 1..10 with no gap or duplicate', async () => {
      const { service, events, userId } = await fixture();
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => service.create(userId, { title: `T${i}` })));
      expect(results.map((r) => r.task.seq).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(events.log.map((e) => e.seq).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(await service.currentSeq(userId)).toBe(10);
    });

    it('[SYNC-1] seq rises by exactly 1 per change across every kind of change, and events carry it in order', async () => {
      const { service, events, userId } = await fixture();
      const other = await fixture();
      const { task } = await service.create(userId, { title: 'Life', deadline: '2026-12-01', recurrence: { type: 'daily', interval: 1, endDate: null } }); // 1
      await other.service.create(other.userId, { title: 'Elsewhere' });
      await service.update(userId, { id: task.id, patch: { intensity: 4 } }); // 2
      const { next } = await service.complete(userId, { id: task.id }); // 3, 4
      await service.remove(userId, next!.id); // 5
      await service.restore(userId, next!.id); // 6
      await service.remove(userId, task.id); // 7
      await service.purge(userId, task.id); // 8
      expect(events.log.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(events.log.map((e) => e.kind)).toEqual(['changed', 'changed', 'changed', 'changed', 'changed', 'changed', 'changed', 'removed']);
      expect(await service.currentSeq(userId)).toBe(8);
      expect(await other.service.currentSeq(other.userId)).toBe(1);
    });

    it('[SYNC-1] changes of several users in one loop turn each take their own seq; one that changes nothing or fails takes none', async () => {
      const { service, events } = await fixture();
      const users = [await newUser(), await newUser(), await newUser()];
      const created = await Promise.all(users.map((u) => service.create(u, { title: 'Start' })));
      expect(created.map((c) => c.task.seq)).toEqual([1, 1, 1]);
      events.clear();
      const results = await Promise.allSettled([
        service.update(users[0]!, { id: created[0]!.task.id, patch: { title: 'A' } }),
        service.update(users[1]!, { id: created[1]!.task.id, patch: { title: 'Start' } }),
        service.update(users[2]!, { id: randomUUID(), patch: { title: 'C' } }),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
      expect((results[0] as PromiseFulfilledResult<{ task: { seq: number } }>).value.task.seq).toBe(2);
      expect(((results[2] as PromiseRejectedResult).reason as AppError).code).toBe(ErrorCode.NOT_FOUND);
      expect(await Promise.all(users.map((u) => service.currentSeq(u)))).toEqual([2, 1, 1]);
      expect(events.log.map((e) => [e.userId, e.seq])).toEqual([[users[0], 2]]);
      expect((await service.findOwned(users[0]!, created[0]!.task.id)).title).toBe('A');
    });

    it('[SYNC-1] changes of one user racing from two nodes all apply, with seqs 1..n and no lost update', async () => {
      // Two services stand for two nodes: each serialises its own changes, and they race in PostgreSQL.
      const nodeA = await fixture();
      const userId = nodeA.userId;
      const nodeB = { service: createTasksService({ tasks: createTasksRepository(pg), events: new RecordingEvents() }) };
      const { task } = await nodeA.service.create(userId, { title: 'Shared', description: '' });
      const appends = Array.from({ length: 12 }, (_, i) => {
        const service = i % 2 === 0 ? nodeA.service : nodeB.service;
        return service.create(userId, { title: `From ${i % 2 === 0 ? 'A' : 'B'} ${i}` });
      });
      const edits = Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? nodeA.service : nodeB.service).update(userId, { id: task.id, patch: { title: `Edit ${i}` } }));
      const results = await Promise.all([...appends, ...edits]);
      expect(results.map((r) => r.task.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 18 }, (_, i) => i + 2));
      expect(await nodeA.service.currentSeq(userId)).toBe(19);
      const shared = await nodeA.service.findOwned(userId, task.id);
      expect(shared.version).toBe(7);
      expect((await nodeA.service.list(userId, {})).tasks).toHaveLength(13);
    });

    it('[TASK-2] a node whose cached task is stale after a change on another node reads again: no lost update, expectedVersion still checked', async () => {
      const nodeA = await fixture();
      const userId = nodeA.userId;
      const nodeB = createTasksService({ tasks: createTasksRepository(pg), events: new RecordingEvents() });
      const { task } = await nodeA.service.create(userId, { title: 'Report', description: 'draft' });
      await nodeA.service.update(userId, { id: task.id, patch: { intensity: 2 } }); // node A now holds version 2
      await nodeB.update(userId, { id: task.id, patch: { description: 'final' } }); // version 3, unknown to A
      const { task: afterA } = await nodeA.service.update(userId, { id: task.id, patch: { title: 'Quarterly report' } });
      expect(afterA).toMatchObject({ title: 'Quarterly report', description: 'final', intensity: 2, version: 4, seq: 4 });
      await nodeB.update(userId, { id: task.id, patch: { intensity: 5 } }); // version 5
      const stale = await failure(nodeA.service.update(userId, { id: task.id, expectedVersion: 4, patch: { title: 'Mine' } }), ErrorCode.CONFLICT);
      expect((stale.details?.task as Task).version).toBe(5);
      expect(await nodeA.service.findOwned(userId, task.id)).toMatchObject({ title: 'Quarterly report', intensity: 5, version: 5 });
    });

    it('[SYNC-2] a batch write that fails applies nothing, and then only the failing change fails: the others apply once', async () => {
      const repo = createTasksRepository(pg);
      const a = await fixture();
      const b = await fixture();
      const taken = (await b.service.create(b.userId, { title: 'B owns this id' })).task;
      const mine = (await a.service.create(a.userId, { title: 'Mine' })).task;
      const now = new Date();
      const stored = (await repo.readForChange(a.userId, { taskId: mine.id }))!;
      const clash = { ...stored.task!, id: taken.id, userId: b.userId, seq: 2, version: 1 };
      const edit = { ...stored.task!, title: 'Edited in the batch', version: 2, seq: 2, updatedAt: now };
      // Same loop turn: one batch, one statement, which fails on the primary key.
      const [failed, applied] = await Promise.allSettled([
        repo.save({ userId: b.userId, fromSeq: 1, toSeq: 2, writes: { inserted: [clash], updated: [], purged: [] }, now }),
        repo.save({ userId: a.userId, fromSeq: 1, toSeq: 2, writes: { inserted: [], updated: [edit], purged: [] }, now }),
      ]);
      expect(failed.status).toBe('rejected');
      expect(((failed as PromiseRejectedResult).reason as { code: string }).code).toBe('23505');
      expect(applied).toEqual({ status: 'fulfilled', value: true });
      expect(await a.service.currentSeq(a.userId)).toBe(2);
      expect(await b.service.currentSeq(b.userId)).toBe(1);
      expect(await a.service.findOwned(a.userId, mine.id)).toMatchObject({ title: 'Edited in the batch', version: 2, seq: 2 });
      expect(await b.service.findOwned(b.userId, taken.id)).toMatchObject({ title: 'B owns this id', version: 1 });
    });

    it('[SYNC-2] a change is committed before its event is emitted', async () => {
      const { service, events, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'Committed', deadline: '2026-12-01', recurrence: { type: 'daily', interval: 1, endDate: null } });
      await service.complete(userId, { id: task.id });
      await service.update(userId, { id: task.id, patch: { title: 'Again' } });
      const checks = await Promise.all(events.committedChecks);
      expect(checks).toHaveLength(4);
      // A check reads from another connection; it may run after later changes have committed (seq only
      // rises), but never sees less than its own event's seq: the change was committed before the event.
      for (const check of checks) expect(check.stored).toBeGreaterThanOrEqual(check.seq);
    });

    it('[SYNC-2] a change that fails is neither stored nor broadcast, and takes no seq', async () => {
      const { service, events, userId } = await fixture();
      const { task } = await service.create(userId, { title: 'A' });
      events.clear();
      await failure(service.update(userId, { id: task.id, patch: { title: 'B', dependencies: [randomUUID()] } }), ErrorCode.VALIDATION);
      expect(events.log).toEqual([]);
      expect(await service.findOwned(userId, task.id)).toEqual(task);
      expect(await service.currentSeq(userId)).toBe(1);
    });

    it('[SYNC-1] sync returns every task changed after since and the ids purged after it', async () => {
      const { service, userId } = await fixture();
      const a = (await service.create(userId, { title: 'A' })).task; // 1
      const b = (await service.create(userId, { title: 'B' })).task; // 2
      const c = (await service.create(userId, { title: 'C' })).task; // 3
      await service.remove(userId, b.id); // 4
      await service.purge(userId, b.id); // 5
      const a2 = (await service.update(userId, { id: a.id, patch: { title: 'A2' } })).task; // 6
      const gone = (await service.create(userId, { title: 'Gone' })).task; // 7
      const goneDeleted = (await service.remove(userId, gone.id)).task; // 8
      expect(await service.sync(userId, 0)).toEqual({ seq: 8, tasks: [c, a2, goneDeleted], removed: [b.id] });
      expect(await service.sync(userId, 3)).toEqual({ seq: 8, tasks: [a2, goneDeleted], removed: [b.id] });
      expect(await service.sync(userId, 5)).toEqual({ seq: 8, tasks: [a2, goneDeleted], removed: [] });
      expect(await service.sync(userId, 8)).toEqual({ seq: 8, tasks: [], removed: [] });
      expect(await service.sync(userId, 9)).toEqual({ seq: 8, tasks: [c, a2, goneDeleted], removed: [], reset: true });
    });

    it('[SYNC-1] an id purged and created again is a task, not a removal', async () => {
      const { service, userId } = await fixture();
      const id = randomUUID();
      await service.create(userId, { id, title: 'First life' });
      await service.remove(userId, id);
      await service.purge(userId, id);
      const reborn = (await service.create(userId, { id, title: 'Second life' })).task;
      expect(reborn).toMatchObject({ version: 1, seq: 4 });
      expect(await service.sync(userId, 1)).toEqual({ seq: 4, tasks: [reborn], removed: [] });
      expect(await service.sync(userId, 3)).toEqual({ seq: 4, tasks: [reborn], removed: [] });
    });
  });

  describe('purge job [TASK-4, SYNC-1]', () => {
    it('[TASK-4] purgeExpired purges completed and deleted tasks older than 7 days, each as its own change', async () => {
      const { service, events, userId } = await fixture();
      const oldDone = (await service.create(userId, { title: 'old done' })).task; // 1
      await service.complete(userId, { id: oldDone.id }); // 2
      const freshDone = (await service.create(userId, { title: 'fresh done' })).task; // 3
      await service.complete(userId, { id: freshDone.id }); // 4
      const oldTrash = (await service.create(userId, { title: 'old trash' })).task; // 5
      await service.remove(userId, oldTrash.id); // 6
      const restoredMeanwhile = (await service.create(userId, { title: 'reopened' })).task; // 7
      await service.complete(userId, { id: restoredMeanwhile.id }); // 8
      const open = (await service.create(userId, { title: 'open' })).task; // 9
      const eightDaysAgo = new Date(Date.now() - 8 * 86_400_000);
      const sixDaysAgo = new Date(Date.now() - 6 * 86_400_000);
      await sql('update tasks set completed_at = ? where id in (?, ?)', [eightDaysAgo, oldDone.id, restoredMeanwhile.id]);
      await sql('update tasks set completed_at = ? where id = ?', [sixDaysAgo, freshDone.id]);
      await sql('update tasks set deleted_at = ? where id = ?', [eightDaysAgo, oldTrash.id]);
      await sql('update tasks set created_at = ?, updated_at = ? where id = ?', [eightDaysAgo, eightDaysAgo, open.id]);
      await service.update(userId, { id: restoredMeanwhile.id, patch: { status: 'in_progress' } }); // 10: completedAt cleared
      events.clear();

      const purged = await service.purgeExpired();
      expect(purged).toBeGreaterThanOrEqual(2);
      const mine = events.of(userId);
      expect(mine).toEqual([
        { kind: 'removed', userId, seq: 11, id: oldDone.id },
        { kind: 'removed', userId, seq: 12, id: oldTrash.id },
      ]);
      expect((await service.exportAll(userId)).map((t) => t.title).sort()).toEqual(['fresh done', 'open', 'reopened']);
      expect(await service.currentSeq(userId)).toBe(12);
      expect(await service.sync(userId, 10)).toEqual({ seq: 12, tasks: [], removed: [oldDone.id, oldTrash.id] });

      events.clear();
      await service.purgeExpired();
      expect(events.of(userId)).toEqual([]);
    });

    it('[SYNC-1] tombstones older than 30 days are pruned; a sync from before them answers reset with every task', async () => {
      const { service, userId } = await fixture();
      const keep = (await service.create(userId, { title: 'keep' })).task; // 1
      const a = (await service.create(userId, { title: 'a' })).task; // 2
      await service.remove(userId, a.id); // 3
      await service.purge(userId, a.id); // 4
      const b = (await service.create(userId, { title: 'b' })).task; // 5
      await service.remove(userId, b.id); // 6
      await service.purge(userId, b.id); // 7
      const trashed = (await service.remove(userId, keep.id)).task; // 8
      await sql('update task_tombstones set purged_at = ? where task_id = ?', [new Date(Date.now() - 31 * 86_400_000), a.id]);

      await service.purgeExpired();
      const floor = await sql<{ tombstone_floor_seq: number }>('select tombstone_floor_seq from users where id = ?', [userId]);
      expect(floor[0]?.tombstone_floor_seq).toBe(4);
      expect(await sql('select task_id from task_tombstones where user_id = ?', [userId])).toEqual([{ task_id: b.id }]);

      const everything = { seq: 8, tasks: [trashed], removed: [], reset: true };
      expect(await service.sync(userId, 0)).toEqual(everything);
      expect(await service.sync(userId, 3)).toEqual(everything);
      expect(await service.sync(userId, 4)).toEqual({ seq: 8, tasks: [trashed], removed: [b.id] });
      expect(await service.sync(userId, 7)).toEqual({ seq: 8, tasks: [trashed], removed: [] });
    });
  });
});
