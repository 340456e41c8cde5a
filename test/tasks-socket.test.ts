/**
 * The task rules (PROTOCOL §6.1) on the wire: acks, broadcasts to a second tab,
 * seq order, views, `task:next` in the user's timezone, and the purge job.
 * The service's own rules are unit-tested in server/features/tasks.
 */
import { describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { productionEnv } from './support/env.js';
import { useTwoNodes } from './support/app.js';
import { signUp } from './support/users.js';
import { connectReady, type Tab } from './support/sockets.js';
import { ErrorCode } from '../shared/errors.js';
import type { Task } from '../shared/schemas/tasks.js';
import { runPurgeOnce } from '../server/jobs/purge.js';

const cluster = useTwoNodes(() => productionEnv({ RATE_LIMIT_PER_MINUTE: '10000', SOCKET_EVENTS_PER_MINUTE: '10000' }));
const { track } = cluster;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A user with two tabs, one per node. */
async function twoTabs(fields: { timezone?: string } = {}) {
  const user = await signUp(cluster.a.url, fields);
  const tab = track(await connectReady(cluster.a.url, user.auth.accessToken));
  const other = track(await connectReady(cluster.b.url, user.auth.accessToken));
  return { user, tab, other };
}

const changes = (t: Tab) => t.received.filter((r) => r.event === 'task:changed' || r.event === 'task:removed');

/** The calendar date `days` after today in `timeZone`, as the user sees it. */
function dayIn(timeZone: string, days = 0): string {
  const today = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
  const d = new Date(`${today}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

async function sql<T = Record<string, unknown>>(query: string, params: unknown[] = []): Promise<T[]> {
  return cluster.a.deps.orm.em.getConnection().execute<T[]>(query, params);
}

describe('TASK-1 / TASK-2 create and update', () => {
  it('[TASK-1] create with a known id returns the existing task and broadcasts nothing', async () => {
    const { tab, other } = await twoTabs();
    const id = randomUUID();
    const first = await tab.call('task:create', { id, title: 'Pay rent', deadline: '2030-02-01' });
    expect(first.task).toMatchObject({ id, title: 'Pay rent', version: 1, seq: 1 });
    expect(await other.waitFor('task:changed', (d) => d.task.id === id)).toEqual({ seq: 1, task: first.task });
    const again = await other.call('task:create', { id: id.toUpperCase(), title: 'Something else entirely', intensity: 5 });
    expect(again.task).toEqual(first.task);
    await sleep(300);
    expect(changes(other)).toHaveLength(1);
    expect(changes(tab)).toHaveLength(1);
    expect((await tab.call('task:list', {})).seq).toBe(1);
  });

  it('[TASK-1][TASK-6] create with an id owned by another user is CONFLICT and changes nothing of theirs', async () => {
    const owner = await twoTabs();
    const { tab } = await twoTabs();
    const { task } = await owner.tab.call('task:create', { title: 'Mine' });
    const ack = await tab.request('task:create', { id: task.id, title: 'Mine now' });
    expect(ack).toMatchObject({ ok: false, error: { code: ErrorCode.CONFLICT } });
    expect(JSON.stringify(ack)).not.toContain('Mine"');
    expect((await owner.tab.call('task:list', {})).tasks).toEqual([task]);
    expect((await tab.call('task:list', {})).tasks).toEqual([]);
  });

  it('[TASK-2] a stale expectedVersion is CONFLICT with the current task in details.task; the right one bumps the version by 1', async () => {
    const { tab, other } = await twoTabs();
    const { task } = await tab.call('task:create', { title: 'Draft' });
    await other.waitFor('task:changed', (d) => d.seq === 1);
    const v2 = await other.call('task:update', { id: task.id, expectedVersion: 1, patch: { title: 'Draft 2' } });
    expect(v2.task).toMatchObject({ version: 2, seq: 2, title: 'Draft 2' });
    const stale = await tab.request('task:update', { id: task.id, expectedVersion: 1, patch: { title: 'Lost update' } });
    expect(stale).toMatchObject({ ok: false, error: { code: ErrorCode.CONFLICT } });
    if (!stale.ok) expect(stale.error.details?.task).toEqual(v2.task);
    await sleep(200);
    expect(changes(other).map((r) => r.data.seq)).toEqual([1, 2]);
  });
});

describe('TASK-3 completion and recurrence', () => {
  it('[TASK-3][SYNC-1] a monthly task due 2027-01-31 completes into 2027-02-28, then 2027-03-31, each with two task:changed in seq order and the ack\'s next', async () => {
    const { tab, other } = await twoTabs();
    const { task } = await tab.call('task:create', {
      title: 'Invoice',
      description: 'Send the invoice',
      deadline: '2027-01-31',
      intensity: 4,
      project: 'Admin',
      recurrence: { type: 'monthly', interval: 1 },
    });
    const first = await tab.call('task:complete', { id: task.id, notes: 'sent by mail' });
    expect(first.task).toMatchObject({ id: task.id, status: 'completed', version: 2, seq: 2, description: 'Send the invoice\n\nCompleted: sent by mail' });
    expect(first.task.completedAt).not.toBeNull();
    expect(first.next).toMatchObject({
      title: 'Invoice',
      description: 'Send the invoice',
      deadline: '2027-02-28',
      status: 'not_started',
      intensity: 4,
      project: 'Admin',
      recurrence: { type: 'monthly', interval: 1, endDate: null },
      version: 1,
      seq: 3,
    });
    // As a user would, the other tab acts once it has the next occurrence: its node hears of the first tab's
    // changes through Redis while the request comes straight in, and no order between the two is promised.
    await other.waitFor('task:changed', (d) => d.seq === 3);
    const second = await other.call('task:complete', { id: first.next!.id });
    expect(second.next).toMatchObject({ deadline: '2027-03-31', seq: 5 });
    await Promise.all([tab, other].map((t) => t.waitFor('task:changed', (d) => d.seq === 5)));
    for (const t of [tab, other]) {
      const seen = changes(t).map((r) => r.data);
      expect(seen.map((d) => d.seq)).toEqual([1, 2, 3, 4, 5]);
      expect(seen[1]!.task).toEqual(first.task);
      expect(seen[2]!.task).toEqual(first.next);
      expect(seen[3]!.task).toEqual(second.task);
      expect(seen[4]!.task).toEqual(second.next);
    }
  });

  it('[TASK-3] completing a completed task answers ok with next: null, changes nothing and broadcasts nothing', async () => {
    const { tab, other } = await twoTabs();
    const { task } = await tab.call('task:create', { title: 'Water plants', deadline: '2030-01-01', recurrence: { type: 'weekly', interval: 1 } });
    const done = await tab.call('task:complete', { id: task.id });
    expect(done.next).not.toBeNull();
    await other.waitFor('task:changed', (d) => d.seq === 3);
    const again = await other.call('task:complete', { id: task.id, notes: 'twice' });
    expect(again).toEqual({ task: done.task, next: null });
    await sleep(300);
    expect(changes(other).map((r) => r.data.seq)).toEqual([1, 2, 3]);
    expect((await tab.call('task:list', { view: 'active' })).tasks).toHaveLength(1);
  });
});

describe('TASK-4 trash', () => {
  it('[TASK-4] restore brings back the previous status: completed → delete → restore → completed', async () => {
    const { tab, other } = await twoTabs();
    const { task } = await tab.call('task:create', { title: 'Done thing' });
    const done = await tab.call('task:complete', { id: task.id });
    const deleted = await tab.call('task:delete', { id: task.id });
    expect(deleted.task).toMatchObject({ status: 'deleted', version: 3 });
    expect(deleted.task.deletedAt).not.toBeNull();
    const restored = await other.call('task:restore', { id: task.id });
    expect(restored.task).toMatchObject({ status: 'completed', deletedAt: null, completedAt: done.task.completedAt, version: 4, seq: 4 });
    expect(await tab.waitFor('task:changed', (d) => d.seq === 4)).toEqual({ seq: 4, task: restored.task });
    expect((await tab.call('task:list', { view: 'completed' })).tasks).toEqual([restored.task]);
    const waiting = await tab.call('task:create', { title: 'Waiting thing', status: 'waiting_on', waitingOn: 'Ann' });
    await tab.call('task:delete', { id: waiting.task.id });
    expect((await tab.call('task:restore', { id: waiting.task.id })).task).toMatchObject({ status: 'waiting_on', waitingOn: 'Ann' });
  });

  it('[TASK-4] purge only from the trash (CONFLICT otherwise), with task:removed { seq, id } to every tab', async () => {
    const { tab, other } = await twoTabs();
    const { task } = await tab.call('task:create', { title: 'Junk' });
    expect(await tab.request('task:purge', { id: task.id })).toMatchObject({ ok: false, error: { code: ErrorCode.CONFLICT } });
    await tab.call('task:delete', { id: task.id });
    expect(await other.call('task:purge', { id: task.id })).toEqual({ id: task.id });
    for (const t of [tab, other]) expect(await t.waitFor('task:removed')).toEqual({ seq: 3, id: task.id });
    expect(await tab.request('task:restore', { id: task.id })).toMatchObject({ ok: false, error: { code: ErrorCode.NOT_FOUND } });
    const sync = await other.call('task:sync', { since: 2 });
    expect(sync).toEqual({ seq: 3, tasks: [], removed: [task.id] });
  });
});

describe('TASK-5 task:next in the user\'s timezone', () => {
  for (const timeZone of ['Pacific/Kiritimati', 'America/Los_Angeles']) {
    it(`[TASK-5] scores with deadlines counted in ${timeZone}, with the intensity filter`, async () => {
      const { tab } = await twoTabs({ timezone: timeZone });
      expect(tab.ready.user.timezone).toBe(timeZone);
      const today = dayIn(timeZone);
      const create = async (title: string, fields: Record<string, unknown>) => (await tab.call('task:create', { title, ...fields } as never)).task as Task;
      const overdue = await create('overdue light', { deadline: dayIn(timeZone, -1), intensity: 1 }); // 100 + 5
      const dueToday = await create('today light', { deadline: today, intensity: 2 }); // 90 + 10
      const tomorrow = await create('tomorrow heavy', { deadline: dayIn(timeZone, 1), intensity: 5, status: 'in_progress' }); // 80 + 25 + 15
      const inThree = await create('in three days medium', { deadline: dayIn(timeZone, 3), intensity: 3 }); // 70 + 15
      await create('in eight days medium', { deadline: dayIn(timeZone, 8), intensity: 3 }); // 30 + 15
      // Excluded: waiting, blocked by an open dependency, completed, deleted.
      await create('waiting overdue', { deadline: dayIn(timeZone, -5), intensity: 5, status: 'waiting_on', waitingOn: 'Bob' });
      await create('blocked overdue', { deadline: dayIn(timeZone, -5), intensity: 5, dependencies: [inThree.id] });
      const done = await create('done overdue', { deadline: dayIn(timeZone, -5), intensity: 5 });
      await tab.call('task:complete', { id: done.id });
      const trashed = await create('trashed overdue', { deadline: dayIn(timeZone, -5), intensity: 5 });
      await tab.call('task:delete', { id: trashed.id });
      if (dayIn(timeZone) !== today) return; // midnight passed in that zone meanwhile: the expectations no longer hold

      expect(await tab.call('task:next', {})).toEqual({ task: tomorrow, score: 120 });
      expect(await tab.call('task:next', { intensity: 'heavy' })).toEqual({ task: tomorrow, score: 120 });
      expect(await tab.call('task:next', { intensity: 'light' })).toEqual({ task: overdue, score: 105 });
      expect(await tab.call('task:next', { intensity: 'medium' })).toEqual({ task: inThree, score: 85 });
      await tab.call('task:complete', { id: overdue.id });
      expect(await tab.call('task:next', { intensity: 'light' })).toEqual({ task: dueToday, score: 100 });
      await tab.call('task:complete', { id: dueToday.id });
      expect(await tab.call('task:next', { intensity: 'light' })).toEqual({ task: null, score: null });
    });
  }
});

describe('§6.1 task:list views', () => {
  it('[§6.1] active, upcoming with days, waiting, completed, deleted and the project filter', async () => {
    const { tab } = await twoTabs({ timezone: 'Asia/Tokyo' });
    const tz = 'Asia/Tokyo';
    const c = async (title: string, fields: Record<string, unknown> = {}) => (await tab.call('task:create', { title, ...fields } as never)).task as Task;
    const overdue = await c('overdue', { deadline: dayIn(tz, -2), project: 'Alpha' });
    const soon = await c('soon', { deadline: dayIn(tz, 2), project: 'Beta' });
    const later = await c('later', { deadline: dayIn(tz, 10), project: 'Alpha' });
    const undated = await c('undated', { project: 'Alpha' });
    const w1 = await c('waiting first', { status: 'waiting_on', waitingOn: 'Ann' });
    const w2 = await c('waiting second', { status: 'waiting_on', waitingOn: 'Ben' });
    const d1 = await c('done first');
    const d2 = await c('done second', { project: 'Alpha' });
    const x1 = await c('trash first');
    const x2 = await c('trash second');
    await tab.call('task:complete', { id: d1.id });
    await sleep(5);
    await tab.call('task:complete', { id: d2.id });
    await tab.call('task:delete', { id: x1.id });
    await sleep(5);
    await tab.call('task:delete', { id: x2.id });
    // Touching the first waiting task makes it the most recently updated.
    await sleep(5);
    const w1b = (await tab.call('task:update', { id: w1.id, patch: { waitingOn: 'Ann again' } })).task;

    const ids = (tasks: Task[]) => tasks.map((t) => t.id);
    const all = await tab.call('task:list', {});
    expect(new Set(ids(all.tasks))).toEqual(new Set([overdue.id, soon.id, later.id, undated.id, w1.id, w2.id]));
    expect(ids(all.tasks).slice(0, 3)).toEqual([overdue.id, soon.id, later.id]);
    expect(all.seq).toBe(15);
    expect(await tab.call('task:list', { view: 'active' })).toEqual(all);
    expect(ids((await tab.call('task:list', { view: 'upcoming' })).tasks)).toEqual([overdue.id, soon.id]);
    expect(ids((await tab.call('task:list', { view: 'upcoming', days: 10 })).tasks)).toEqual([overdue.id, soon.id, later.id]);
    expect(ids((await tab.call('task:list', { view: 'upcoming', days: 1 })).tasks)).toEqual([overdue.id]);
    expect((await tab.call('task:list', { view: 'waiting' })).tasks).toEqual([w2, w1b]);
    expect(ids((await tab.call('task:list', { view: 'completed' })).tasks)).toEqual([d2.id, d1.id]);
    expect(ids((await tab.call('task:list', { view: 'deleted' })).tasks)).toEqual([x2.id, x1.id]);
    expect(ids((await tab.call('task:list', { project: 'Alpha' })).tasks)).toEqual([overdue.id, later.id, undated.id]);
    expect(ids((await tab.call('task:list', { view: 'upcoming', days: 30, project: 'Alpha' })).tasks)).toEqual([overdue.id, later.id]);
    expect(ids((await tab.call('task:list', { view: 'completed', project: 'Alpha' })).tasks)).toEqual([d2.id]);
    expect((await tab.call('task:list', { project: 'Nope' })).tasks).toEqual([]);
    expect(await tab.request('task:list', { view: 'upcoming', days: 0 })).toMatchObject({ ok: false, error: { code: ErrorCode.VALIDATION } });
  });
});

describe('TASK-4 / SYNC-1 the purge job', () => {
  it('[TASK-4][SYNC-1] a task completed over 7 days ago is purged by the job: the tab gets task:removed and task:sync lists it in removed', async () => {
    const { tab, other } = await twoTabs();
    const old = (await tab.call('task:create', { title: 'old and done' })).task;
    const recent = (await tab.call('task:create', { title: 'recently done' })).task;
    const trashed = (await tab.call('task:create', { title: 'old trash' })).task;
    await tab.call('task:complete', { id: old.id });
    await tab.call('task:complete', { id: recent.id });
    await tab.call('task:delete', { id: trashed.id });
    await sql(`update tasks set completed_at = now() - interval '8 days' where id = ?`, [old.id]);
    await sql(`update tasks set deleted_at = now() - interval '8 days' where id = ?`, [trashed.id]);
    await sql(`update tasks set completed_at = now() - interval '6 days' where id = ?`, [recent.id]);
    const since = (await tab.call('task:list', {})).seq;
    expect(since).toBe(6);

    const purged = await runPurgeOnce({ redis: cluster.a.deps.redis, tasks: cluster.a.deps.tasks, logger: cluster.a.deps.logger });
    expect(purged).toBeGreaterThanOrEqual(2);
    const removed = await Promise.all([
      tab.waitFor('task:removed', (d) => d.id === old.id),
      other.waitFor('task:removed', (d) => d.id === trashed.id),
    ]);
    expect(removed.map((r) => r.seq).sort()).toEqual([7, 8]);
    const sync = await other.call('task:sync', { since });
    expect(sync.seq).toBe(8);
    expect(sync.tasks).toEqual([]);
    expect(sync.removed.sort()).toEqual([old.id, trashed.id].sort());
    expect(ids((await tab.call('task:list', { view: 'completed' })).tasks)).toEqual([recent.id]);
    expect(await tab.request('task:restore', { id: trashed.id })).toMatchObject({ ok: false, error: { code: ErrorCode.NOT_FOUND } });
  });

  it('[TASK-4] the job run on two nodes at once purges once: one run returns null (the Redis lock)', async () => {
    const { tab } = await twoTabs();
    const { task } = await tab.call('task:create', { title: 'purge me once' });
    await tab.call('task:complete', { id: task.id });
    await sql(`update tasks set completed_at = now() - interval '30 days' where id = ?`, [task.id]);
    const results = await Promise.all([
      runPurgeOnce({ redis: cluster.a.deps.redis, tasks: cluster.a.deps.tasks, logger: cluster.a.deps.logger }),
      runPurgeOnce({ redis: cluster.b.deps.redis, tasks: cluster.b.deps.tasks, logger: cluster.b.deps.logger }),
    ]);
    expect(results.filter((r) => r === null)).toHaveLength(1);
    expect(results.find((r) => r !== null)).toBeGreaterThanOrEqual(1);
    await tab.waitFor('task:removed', (d) => d.id === task.id);
    await sleep(200);
    expect(tab.received.filter((r) => r.event === 'task:removed')).toEqual([expect.objectContaining({ data: { seq: 3, id: task.id } })]);
    const rows = await sql<{ n: string }>('select count(*) as n from task_tombstones where task_id = ?', [task.id]);
    expect(Number(rows[0]!.n)).toBe(1);
  });
});

const ids = (tasks: Task[]) => tasks.map((t) => t.id);
