/**
 * Reminders (PROTOCOL §6.1b, REM-1…REM-7) on two production-mode nodes of one
 * deployment, real PostgreSQL and Redis, real socket.io-client tabs. The
 * file's database is its own (test/support/file-database.ts), so only these
 * nodes claim these reminders.
 */
import { describe, expect, it } from 'vitest';
import { productionEnv, randomSecret, testDatabaseUrl, uniquePrefix } from './support/env.js';
import { startNodeProcess, startTestApp, useTwoNodes } from './support/app.js';
import { signUp } from './support/users.js';
import { connectReady, type Tab } from './support/sockets.js';
import { until } from './support/until.js';
import { migratedDatabase } from './support/postgres-server.js';
import { createPostgres } from '../server/db/postgres.js';
import { createRemindersRepository } from '../server/features/reminders/reminders.repository.js';
import { ErrorCode } from '../shared/errors.js';
import type { Reminder } from '../shared/schemas/reminders.js';

const shared = { REDIS_PREFIX: uniquePrefix(), SECRET_KEY: randomSecret(), SOCKET_EVENTS_PER_MINUTE: '100000', RATE_LIMIT_PER_MINUTE: '10000' };
const cluster = useTwoNodes(() => productionEnv(shared));

const inMs = (ms: number) => new Date(Date.now() + ms).toISOString();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dues = (tab: Tab, id?: string) => tab.received.filter((r) => r.event === 'reminder:due' && (id === undefined || r.data.reminder.id === id));

/** A user with one tab on each node. */
async function userWithTabs(fields: { timezone?: string } = {}) {
  const user = await signUp(cluster.a.url, fields);
  const onA = cluster.track(await connectReady(cluster.a.url, user.auth.accessToken));
  const onB = cluster.track(await connectReady(cluster.b.url, user.auth.accessToken));
  return { user, tabs: [onA, onB] as const };
}

describe('REM-1 firing', () => {
  it('[REM-1] at its time every tab of the user, on both nodes, gets reminder:due within 5 s, once', async () => {
    const { tabs } = await userWithTabs();
    const [onA, onB] = tabs;
    const remindAt = inMs(2_000);
    const { task } = await onA.call('task:create', { title: 'Call the dentist', remindAt });
    expect(task.remindAt).toBe(remindAt);
    await onB.waitFor('task:changed', (d) => d.task.id === task.id && d.task.remindAt === remindAt);

    const [onADue, onBDue] = await Promise.all(tabs.map((t) => t.waitFor('reminder:due', (d) => d.reminder.taskId === task.id, 10_000)));
    const reminder: Reminder = onADue.reminder;
    expect(reminder).toEqual({ id: expect.any(String), taskId: task.id, title: 'Call the dentist', firesAt: remindAt, late: false, state: 'due' });
    expect(onBDue.reminder).toEqual(reminder);
    for (const tab of tabs) {
      const at = dues(tab, reminder.id)[0]!.at;
      expect(at).toBeGreaterThanOrEqual(Date.parse(remindAt));
      expect(at - Date.parse(remindAt)).toBeLessThan(5_000);
    }
    await sleep(2_500); // two more polls of each node
    expect(dues(onA, reminder.id)).toHaveLength(1);
    expect(dues(onB, reminder.id)).toHaveLength(1);
    // Another user's tabs hear nothing of it.
    const other = await userWithTabs();
    await sleep(1_200);
    for (const tab of other.tabs) expect(dues(tab)).toHaveLength(0);
  });

  it('[REM-1] 500 reminders due in the same minute fire exactly once each, in every tab, across both nodes', async () => {
    const users = await Promise.all(Array.from({ length: 5 }, () => userWithTabs()));
    const start = Date.now() + 4_000;
    const created = await Promise.all(
      users.map(async ({ tabs: [tab] }, u) =>
        Promise.all(
          Array.from({ length: 100 }, async (_, i) => (await tab.call('task:create', { title: `Reminder ${u}-${i}`, remindAt: new Date(start + ((u * 100 + i) % 50) * 60).toISOString() })).task),
        ),
      ),
    );
    expect(created.flat()).toHaveLength(500);
    for (const [u, { tabs }] of users.entries()) {
      for (const tab of tabs) await until(async () => dues(tab).length, (n) => n >= 100, 20_000, `user ${u}'s 100 reminders`);
    }
    await sleep(2_500); // a duplicate would come from a later poll
    const firedIds = new Set<string>();
    for (const [u, { tabs }] of users.entries()) {
      const taskIds = new Set(created[u]!.map((t) => t.id));
      for (const tab of tabs) {
        const got = dues(tab);
        expect(got).toHaveLength(100);
        const byTask = new Set(got.map((r) => r.data.reminder.taskId));
        expect(byTask).toEqual(taskIds);
        for (const r of got) {
          firedIds.add(r.data.reminder.id);
          expect(r.at - Date.parse(r.data.reminder.firesAt)).toBeLessThan(5_000);
        }
      }
    }
    expect(firedIds.size).toBe(500);
    // The nodes' metrics count each once, on time (their sum over the file's reminders so far: at least these 500).
    let onTime = 0;
    for (const node of [cluster.a, cluster.b]) {
      const fired = await node.deps.metrics.registry.getSingleMetric('sam_reminders_fired_total')!.get();
      onTime += fired.values.filter((v) => v.labels.late === 'false').reduce((sum, v) => sum + v.value, 0);
    }
    expect(onTime).toBeGreaterThanOrEqual(500);
    expect(onTime).toBeLessThan(510);
    // PostgreSQL agrees: all delivered, none left firing or pending.
    const sql = createPostgres(testDatabaseUrl(), { max: 1 });
    try {
      const rows = await sql<{ state: string; n: number }[]>`
        select state, count(*)::int as n from reminders where id = any(${[...firedIds]}::uuid[]) group by state`;
      expect(rows).toEqual([{ state: 'due', n: 500 }]);
    } finally {
      await sql.end();
    }
  }, 60_000);
});

describe('REM-2 / REM-3 / REM-7 late and missed reminders', () => {
  it('[REM-7] a reminder set in the past fires at once, late; more than 5 years ahead is VALIDATION', async () => {
    const { tabs } = await userWithTabs();
    const past = inMs(-3_600_000);
    const { task } = await tabs[0].call('task:create', { title: 'Overdue call', remindAt: past });
    const { reminder } = await tabs[1].waitFor('reminder:due', (d) => d.reminder.taskId === task.id, 5_000);
    expect(reminder).toMatchObject({ late: true, state: 'due', firesAt: past });

    const far = new Date(Date.now() + 5 * 366 * 86_400_000 + 86_400_000).toISOString();
    const refused = await tabs[0].request('task:create', { title: 'Too far', remindAt: far });
    expect(refused).toMatchObject({ ok: false, error: { code: ErrorCode.VALIDATION, issues: [{ path: 'remindAt' }] } });
    const refusedPatch = await tabs[0].request('task:update', { id: task.id, patch: { remindAt: far } });
    expect(refusedPatch).toMatchObject({ ok: false, error: { code: ErrorCode.VALIDATION, issues: [{ path: 'patch.remindAt' }] } });
    const nearlyFar = new Date(Date.now() + 4 * 365 * 86_400_000).toISOString();
    expect((await tabs[0].call('task:update', { id: task.id, patch: { remindAt: nearlyFar } })).task.remindAt).toBe(nearlyFar);
  });

  it('[REM-2] [REM-3] reminders due when their only node was killed fire late when one starts; a later tab lists them', async () => {
    // A deployment of its own (its own database too, or the cluster's nodes would fire it): one node, killed
    // (SIGKILL) before its reminders fall due.
    const databaseUrl = await migratedDatabase(testDatabaseUrl().replace(/\/([^/]+)$/, '/$1_alone'));
    const env = productionEnv({ ...shared, DATABASE_URL: databaseUrl, REDIS_PREFIX: uniquePrefix(), NODE_ID: 'rem-alone' });
    const first = await startNodeProcess(env);
    const user = await signUp(first.url);
    const tab = await connectReady(first.url, user.auth.accessToken, { reconnection: false });
    const { task } = await tab.call('task:create', { title: 'While nobody listened', remindAt: inMs(1_500) });
    await first.kill();
    tab.close();
    await sleep(7_000); // due for longer than REM-1's 5 s by the time a node runs again

    await using second = await startTestApp({ ...env, NODE_ID: 'rem-alone-2' });
    const [listed] = await until(
      async () => (await second.deps.reminders.list(user.auth.user.id)).filter((r) => r.taskId === task.id),
      (r) => r.length === 1,
      5_000,
      'the missed reminder to fire',
    );
    expect(listed).toMatchObject({ taskId: task.id, late: true, state: 'due' });
    // REM-3: a tab that connects later is told how many are due, and lists them.
    const later = await connectReady(second.url, user.auth.accessToken);
    try {
      expect(later.ready.dueReminders).toBe(1);
      expect((await later.call('reminder:list', {})).reminders).toEqual([listed]);
    } finally {
      later.close();
    }
  }, 40_000);

  it('[REM-2] a reminder claimed by a node that died before delivering fires again, late, once its claim lapses', async () => {
    const { tabs } = await userWithTabs();
    const { task } = await tabs[0].call('task:create', { title: 'Claimed by the dying', remindAt: inMs(60_000) });
    // A node claims it (with a short lease) and dies before telling anyone: nothing reaches the tabs.
    const sql = createPostgres(testDatabaseUrl(), { max: 1 });
    try {
      // Made due and claimed in one transaction: the row stays locked until the claim commits, so the running
      // nodes' claims skip it (SKIP LOCKED) instead of firing it first.
      const claimed = await sql.begin(async (tx) => {
        await tx`update reminders set fires_at = now() where task_id = ${task.id}`;
        return createRemindersRepository(tx as unknown as typeof sql).claimDue(10_000, 1_000, 5_000);
      });
      expect(claimed.map((r) => r.taskId)).toContain(task.id);
    } finally {
      await sql.end();
    }
    const { reminder } = await tabs[1].waitFor('reminder:due', (d) => d.reminder.taskId === task.id, 6_000);
    expect(reminder).toMatchObject({ late: true, state: 'due' });
    await sleep(2_000);
    for (const tab of tabs) expect(dues(tab, reminder.id)).toHaveLength(1);
  });
});

describe('REM-4 snooze and dismiss', () => {
  it('[REM-4] snooze in one tab moves it in every tab, and it fires again at the new time; dismiss clears it everywhere', async () => {
    const { tabs } = await userWithTabs();
    const [onA, onB] = tabs;
    const { task } = await onA.call('task:create', { title: 'Water the plants', remindAt: inMs(-1_000) });
    const { reminder } = await onB.waitFor('reminder:due', (d) => d.reminder.taskId === task.id, 5_000);

    const until = new Date(Date.now() + 61_000).toISOString();
    const snoozed = await onB.call('reminder:snooze', { id: reminder.id, until });
    expect(snoozed.reminder).toMatchObject({ id: reminder.id, state: 'pending', firesAt: until, late: false });
    for (const tab of tabs) await tab.waitFor('reminder:changed', (d) => d.reminder.id === reminder.id && d.reminder.state === 'pending');
    expect((await onA.call('reminder:list', {})).reminders.map((r) => r.id)).not.toContain(reminder.id);

    // It fires again at `until` (brought forward here by moving its time in PostgreSQL: the loop reads the row).
    const sql = createPostgres(testDatabaseUrl(), { max: 1 });
    try {
      await sql`update reminders set fires_at = now() where id = ${reminder.id}`;
    } finally {
      await sql.end();
    }
    await Promise.all(tabs.map((t) => until2(t, reminder.id, 2)));

    const dismissed = await onA.call('reminder:dismiss', { id: reminder.id });
    expect(dismissed.reminder).toMatchObject({ id: reminder.id, state: 'dismissed' });
    for (const tab of tabs) await tab.waitFor('reminder:cleared', (d) => d.id === reminder.id);
    expect((await onB.call('reminder:list', {})).reminders).toEqual([]);
    expect((await connectReadyAndClose(onB)).dueReminders).toBe(0);
  });

  it('[REM-4] snooze bounds are 1 minute to 30 days; another user\'s reminder is NOT_FOUND (REM-7)', async () => {
    const { tabs } = await userWithTabs();
    const { task } = await tabs[0].call('task:create', { title: 'Mine', remindAt: inMs(-1_000) });
    const { reminder } = await tabs[0].waitFor('reminder:due', (d) => d.reminder.taskId === task.id, 5_000);
    for (const until of [inMs(10_000), inMs(31 * 86_400_000), 'tomorrow']) {
      expect(await tabs[0].request('reminder:snooze', { id: reminder.id, until })).toMatchObject({ ok: false, error: { code: ErrorCode.VALIDATION } });
    }
    const stranger = await userWithTabs();
    expect(await stranger.tabs[0].request('reminder:snooze', { id: reminder.id, until: inMs(3_600_000) })).toMatchObject({ ok: false, error: { code: ErrorCode.NOT_FOUND } });
    expect(await stranger.tabs[0].request('reminder:dismiss', { id: reminder.id })).toMatchObject({ ok: false, error: { code: ErrorCode.NOT_FOUND } });
    expect(await stranger.tabs[0].request('reminder:dismiss', { id: 'not-a-uuid' })).toMatchObject({ ok: false, error: { code: ErrorCode.VALIDATION } });
    expect((await tabs[0].call('reminder:list', {})).reminders).toEqual([reminder]);
  });
});

describe('REM-5 / REM-6 reminders follow their task', () => {
  it('[REM-5] completing or deleting the task clears its reminder in every tab; restoring does not bring it back', async () => {
    const { tabs } = await userWithTabs();
    const [onA, onB] = tabs;
    const completed = (await onA.call('task:create', { title: 'Complete me', remindAt: inMs(-1_000) })).task;
    const deleted = (await onA.call('task:create', { title: 'Delete me', remindAt: inMs(-1_000) })).task;
    const pending = (await onA.call('task:create', { title: 'Delete me before my time', remindAt: inMs(3_600_000) })).task;
    const due = await Promise.all([completed, deleted].map((t) => onB.waitFor('reminder:due', (d) => d.reminder.taskId === t.id, 5_000)));

    expect((await onB.call('task:complete', { id: completed.id })).task.remindAt).toBeNull();
    expect((await onB.call('task:delete', { id: deleted.id })).task.remindAt).toBeNull();
    await onB.call('task:delete', { id: pending.id });
    for (const tab of tabs) for (const { reminder } of due) await tab.waitFor('reminder:cleared', (d) => d.id === reminder.id);
    expect((await onA.call('reminder:list', {})).reminders).toEqual([]);

    const restored = await onA.call('task:restore', { id: pending.id });
    expect(restored.task.remindAt).toBeNull();
    const sql = createPostgres(testDatabaseUrl(), { max: 1 });
    try {
      const rows = await sql`select id from reminders where task_id = any(${[completed.id, deleted.id, pending.id]}::uuid[])`;
      expect(rows).toHaveLength(0);
    } finally {
      await sql.end();
    }
  });

  it('[REM-5] moving or clearing remindAt replaces the reminder; a reminder fired while its task is deleted ends cleared', async () => {
    const { tabs } = await userWithTabs();
    const [onA, onB] = tabs;
    const { task } = await onA.call('task:create', { title: 'Move me', remindAt: inMs(-1_000) });
    const first = (await onB.waitFor('reminder:due', (d) => d.reminder.taskId === task.id, 5_000)).reminder;
    const moved = await onA.call('task:update', { id: task.id, patch: { remindAt: inMs(-500) } });
    await onB.waitFor('reminder:cleared', (d) => d.id === first.id);
    const second = (await onB.waitFor('reminder:due', (d) => d.reminder.taskId === task.id && d.reminder.id !== first.id, 5_000)).reminder;
    expect(second.firesAt).toBe(moved.task.remindAt);
    await onA.call('task:update', { id: task.id, patch: { remindAt: null } });
    await onB.waitFor('reminder:cleared', (d) => d.id === second.id);
    expect((await onB.call('reminder:list', {})).reminders).toEqual([]);

    // Deleted while being fired: whatever the order on the wire, the last word every tab hears is `cleared`.
    const racing = await Promise.all(Array.from({ length: 20 }, (_, i) => onA.call('task:create', { title: `Race ${i}`, remindAt: inMs(1_000) })));
    await sleep(1_000 + Math.random() * 300);
    await Promise.all(racing.map(({ task: t }) => onB.call('task:delete', { id: t.id })));
    await sleep(2_500);
    for (const tab of tabs) {
      for (const { task: t } of racing) {
        const dueOfTask = tab.received.find((r) => r.event === 'reminder:due' && r.data.reminder.taskId === t.id);
        if (!dueOfTask) continue;
        const clearedAfter = tab.received.findLastIndex((r) => r.event === 'reminder:cleared' && r.data.id === dueOfTask.data.reminder.id);
        expect(clearedAfter).toBeGreaterThan(tab.received.indexOf(dueOfTask));
      }
    }
    expect((await onA.call('reminder:list', {})).reminders).toEqual([]);
  });

  it('[REM-6] completing a recurring task gives the next occurrence a reminder at the same wall-clock offset', async () => {
    const { tabs } = await userWithTabs({ timezone: 'Europe/Berlin' });
    // Due on the 28th of October 2031, reminded the day before at 17:00 Berlin time (summer time, UTC+2).
    const { task } = await tabs[0].call('task:create', {
      title: 'Weekly report',
      deadline: '2031-10-21',
      recurrence: { type: 'weekly', interval: 1 },
      remindAt: '2031-10-20T15:00:00.000Z',
    });
    const { next } = await tabs[1].call('task:complete', { id: task.id });
    expect(next).toMatchObject({ deadline: '2031-10-28', remindAt: '2031-10-27T16:00:00.000Z' }); // 17:00 in winter time, UTC+1
    const sql = createPostgres(testDatabaseUrl(), { max: 1 });
    try {
      const rows = await sql<{ firesAt: Date; state: string }[]>`select fires_at, state from reminders where task_id = ${next!.id}`;
      expect(rows).toEqual([{ firesAt: new Date('2031-10-27T16:00:00.000Z'), state: 'pending' }]);
      expect(await sql`select id from reminders where task_id = ${task.id}`).toHaveLength(0);
    } finally {
      await sql.end();
    }
  });
});

/** Waits until the tab has heard `reminder:due` of `id` `count` times. */
function until2(tab: Tab, id: string, count: number) {
  return until(async () => dues(tab, id).length, (n) => n >= count, 6_000, `reminder:due #${count}`);
}

/** A fresh tab of the same user (its session:ready), closed at once. */
async function connectReadyAndClose(like: Tab) {
  const token = (like.socket.auth as { token: string }).token;
  const tab = await connectReady(cluster.a.url, token);
  tab.close();
  return tab.ready;
}
