/**
 * The assistant sets, moves and clears reminders (issue 20 item 4, §6.1b,
 * CHAT-4): its tools through the real tasks service, and the offline model's
 * default answers through the real SDK, on two production-mode nodes.
 */
import { describe, expect, it } from 'vitest';
import { useChatCluster } from './support/chat-cluster.js';
import type { Tab } from './support/sockets.js';
import { runTool } from '../server/features/chat/tools.js';
import { ErrorCode } from '../shared/errors.js';
import { reminderMaxAheadMs } from '../shared/schemas/reminders.js';
import { tomorrowAt, zonedParts } from '../shared/zoned-time.js';
import type { Message } from '../shared/schemas/chat.js';
import type { Task } from '../shared/schemas/tasks.js';

const MINUTE = 60_000;
const TZ = 'Asia/Tokyo';

const cluster = useChatCluster('remind');
const twoTabs = () => cluster.twoTabs({ timezone: TZ });


/** Sends `content` from tab A and waits until both tabs have the finished answer. */
async function ask(tabA: Tab, tabB: Tab, content: string): Promise<Message> {
  const sent = await tabA.call('chat:send', { content });
  const done = (tab: Tab) => tab.waitFor('chat:done', (d) => d.message.id === sent.assistantMessageId, 15_000) as Promise<{ message: Message }>;
  const [{ message }] = await Promise.all([done(tabA), done(tabB)]);
  return message;
}

/** The task:changed pushes a tab got for `taskId`, in order. */
const changesOf = (tab: Tab, taskId: string): Task[] =>
  tab.received.filter((r) => r.event === 'task:changed' && r.data.task.id === taskId).map((r) => r.data.task);

const hhmm = (instant: Date) => {
  const { time } = zonedParts(instant, TZ);
  return `${String(time.hour).padStart(2, '0')}:${String(time.minute).padStart(2, '0')}`;
};

/** The task's stored remind_at and its reminder row, times in ms since epoch (null when absent). */
async function storedReminder(taskId: string) {
  const rows = await cluster.a.deps.orm.em
    .getConnection()
    .execute('select t.remind_at, r.fires_at, r.state from tasks t left join reminders r on r.task_id = t.id where t.id = ?', [taskId]);
  const row = rows[0] as { remind_at: string | Date | null; fires_at: string | Date | null; state: string | null };
  const ms = (v: string | Date | null) => (v === null ? null : new Date(v).getTime());
  return { remindAt: ms(row.remind_at), firesAt: ms(row.fires_at), state: row.state };
}

describe('the offline model through the socket', () => {
  it('[CHAT-4][REM-1] "remind me to call Bob in 20 minutes" creates the task with remindAt 20 minutes ahead; both tabs on two nodes get task:changed before chat:done', async () => {
    const { tabA, tabB } = await twoTabs();
    const before = Date.now();
    const message = await ask(tabA, tabB, 'remind me to call Bob in 20 minutes');
    const after = Date.now();

    expect(message.status).toBe('complete');
    expect(message.toolCalls).toHaveLength(1);
    expect(message.toolCalls[0]).toMatchObject({ name: 'create_task', status: 'ok', input: { title: 'call Bob' } });
    // The model wrote the time with the user's offset, as the prompt asks.
    expect((message.toolCalls[0]!.input as { remindAt: string }).remindAt).toMatch(/\+09:00$/);

    const changed = changesOf(tabA, (message.toolCalls[0]!.result as { task: { id: string } }).task.id);
    expect(changed).toHaveLength(1);
    const task = changed[0]!;
    expect(task.title).toBe('call Bob');
    const remindAt = Date.parse(task.remindAt!);
    expect(remindAt).toBeGreaterThanOrEqual(before + 19 * MINUTE);
    expect(remindAt).toBeLessThanOrEqual(after + 21 * MINUTE);
    for (const tab of [tabA, tabB]) {
      const changedAt = tab.received.findIndex((r) => r.event === 'task:changed' && r.data.task.id === task.id);
      const doneAt = tab.received.findIndex((r) => r.event === 'chat:done' && r.data.message.id === message.id);
      expect(changedAt).toBeGreaterThanOrEqual(0);
      expect(changedAt).toBeLessThan(doneAt);
      expect(tab.received[changedAt]!.data.task).toEqual(task);
    }
    // The confirmation is on the user's wall clock, and the reminder is stored, pending.
    // Past the user's midnight, 20 minutes ahead is "tomorrow".
    const sameDay = zonedParts(new Date(remindAt), TZ).date === zonedParts(new Date(before), TZ).date;
    expect(message.content).toBe(`Setting a reminder.\n\nI'll remind you to call Bob ${sameDay ? '' : 'tomorrow '}at ${hhmm(new Date(remindAt))}.`);
    expect(await storedReminder(task.id)).toEqual({ remindAt, firesAt: remindAt, state: 'pending' });
    const list = await tabB.call('task:list', {});
    expect(list.tasks.find((t) => t.id === task.id)?.remindAt).toBe(task.remindAt);
  });

  it('[CHAT-4] "move the reminder of call Bob to tomorrow at 9" moves it to 09:00 Tokyo time; "clear the reminder of call Bob" clears it in both tabs', async () => {
    const { tabA, tabB } = await twoTabs();
    const { task } = await tabA.call('task:create', { title: 'call Bob', remindAt: new Date(Date.now() + 60 * MINUTE).toISOString() });

    const before = new Date();
    const moved = await ask(tabA, tabB, 'move the reminder of call Bob to tomorrow at 9');
    expect(moved.toolCalls[0]).toMatchObject({ name: 'update_task', status: 'ok', input: { id: task.id } });
    // Tomorrow as of the send (or of its answer, should Tokyo's midnight fall in between).
    const nine = tomorrowAt(new Date(Date.parse(changesOf(tabA, task.id).at(-1)!.updatedAt)), { hour: 9, minute: 0 }, TZ);
    expect([tomorrowAt(before, { hour: 9, minute: 0 }, TZ).getTime(), tomorrowAt(new Date(), { hour: 9, minute: 0 }, TZ).getTime()]).toContain(nine.getTime());
    for (const tab of [tabA, tabB]) expect(Date.parse(changesOf(tab, task.id).at(-1)!.remindAt!)).toBe(nine.getTime());
    expect(moved.content).toBe(`Moving the reminder of "call Bob".\n\nDone — I'll remind you to call Bob tomorrow at 09:00.`);
    expect(await storedReminder(task.id)).toEqual({ remindAt: nine.getTime(), firesAt: nine.getTime(), state: 'pending' });

    const cleared = await ask(tabA, tabB, 'clear the reminder of call Bob');
    expect(cleared.toolCalls[0]).toMatchObject({ name: 'update_task', status: 'ok', input: { id: task.id, remindAt: null } });
    for (const tab of [tabA, tabB]) expect(changesOf(tab, task.id).at(-1)!.remindAt).toBeNull();
    expect(cleared.content).toBe('Clearing the reminder of "call Bob".\n\nDone — "call Bob" has no reminder now.');
    expect(await storedReminder(task.id)).toMatchObject({ remindAt: null, firesAt: null });
  });
});

describe('the tools\' remindAt', () => {
  const run = (userId: string, name: string, input: unknown) => runTool(cluster.a.deps, userId, name, input, cluster.a.deps.logger);

  it('[REM-7] create_task and update_task refuse a remindAt more than 5 years ahead, or not an ISO 8601 time with an offset, as VALIDATION; nothing changes', async () => {
    const { user, tabA } = await twoTabs();
    const userId = user.auth.user.id;
    const tooFar = new Date(Date.now() + reminderMaxAheadMs + 86_400_000).toISOString();
    for (const remindAt of [tooFar, 'tomorrow at 9', '2030-01-01T09:00:00', 1_800_000_000_000, { toString: '2030-01-01T09:00:00Z' }]) {
      const outcome = await run(userId, 'create_task', { title: 'call Bob', remindAt });
      expect(outcome.ok).toBe(false);
      expect(outcome.result).toMatchObject({ code: ErrorCode.VALIDATION, issues: [expect.objectContaining({ path: 'remindAt' })] });
    }
    const { task } = await tabA.call('task:create', { title: 'call Alice' });
    const moveTooFar = await run(userId, 'update_task', { id: task.id, remindAt: tooFar });
    expect(moveTooFar).toMatchObject({ ok: false, result: { code: ErrorCode.VALIDATION } });
    const list = await tabA.call('task:list', {});
    expect(list.tasks.map((t) => [t.title, t.remindAt])).toEqual([['call Alice', null]]);
    expect(list.seq).toBe(1);
  });

  it('[REM-7] a remindAt just under 5 years ahead is taken; update_task moves it, and null clears it', async () => {
    const { user, tabB } = await twoTabs();
    const userId = user.auth.user.id;
    const farButFine = new Date(Date.now() + reminderMaxAheadMs - 86_400_000);
    const created = await run(userId, 'create_task', { title: 'renew passport', remindAt: farButFine.toISOString() });
    expect(created).toMatchObject({ ok: true });
    const { task } = created.result as { task: { id: string; remindAt: string | null; version: number } };
    expect(Date.parse(task.remindAt!)).toBe(farButFine.getTime());

    // The same instant written with Tokyo's offset, as the model is asked to.
    const moved = await run(userId, 'update_task', { id: task.id, remindAt: '2027-01-15T09:30:00+09:00' });
    expect(moved).toMatchObject({ ok: true, result: { task: { id: task.id, remindAt: '2027-01-15T00:30:00.000Z', version: task.version + 1 } } });
    expect((await storedReminder(task.id)).firesAt).toBe(Date.parse('2027-01-15T00:30:00.000Z'));

    const cleared = await run(userId, 'update_task', { id: task.id, remindAt: null });
    expect(cleared).toMatchObject({ ok: true, result: { task: { id: task.id, remindAt: null } } });
    await tabB.waitFor('task:changed', (d) => d.task.id === task.id && d.task.remindAt === null);
    expect(await storedReminder(task.id)).toMatchObject({ remindAt: null, firesAt: null });
  });
});
