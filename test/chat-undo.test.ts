/**
 * Undo what the assistant did (PROTOCOL §6.2b, CHAT-15), on two production-mode
 * nodes, through the real Anthropic SDK against the project's offline model
 * (its chat phrases create, complete, delete and set reminders; a scripted
 * tool call does the rest): each tool change's undo, sent as ordinary task
 * events from a tab on the other node, brings the task back as it was, and a
 * change made since is CONFLICT and stays.
 */
import { describe, expect, it } from 'vitest';
import { useChatCluster, doneOf } from './support/chat-cluster.js';
import type { Tab } from './support/sockets.js';
import { ErrorCode } from '../shared/errors.js';
import type { Message, ToolCall, ToolUndo } from '../shared/schemas/chat.js';
import type { Task } from '../shared/schemas/tasks.js';

const cluster = useChatCluster('undo');
const twoTabs = () => cluster.twoTabs({ timezone: 'Europe/Paris' });



/** Sends `content` from the first tab and waits for the answer in every tab; answers its one tool call. */
async function ask(both: Tab[], content: string): Promise<{ message: Message; call: ToolCall; undo: ToolUndo | undefined }> {
  const sent = await both[0]!.call('chat:send', { content });
  const [{ message }] = (await Promise.all(both.map((t) => doneOf(t, sent.assistantMessageId)))) as [{ message: Message }];
  expect(message.toolCalls).toHaveLength(1);
  const call = message.toolCalls[0]!;
  expect(call.status).toBe('ok');
  // The same call, undo and all, reached every tab in chat:tool.
  for (const tab of both) {
    const pushed = await tab.waitFor('chat:tool', (d) => d.messageId === message.id);
    expect(pushed.toolCall).toEqual(call);
  }
  return { message, call, undo: call.undo };
}

/** Sends an undo's steps from `tab`, one after another, stopping at the first refusal. */
async function runUndo(tab: Tab, undo: ToolUndo) {
  const acks: { ok: boolean; error?: any; data?: any }[] = [];
  for (const step of undo.steps) {
    const ack = await tab.request(step.event, step.payload as never);
    acks.push(ack);
    if (!ack.ok) break;
  }
  return acks;
}

/** Every task of the user, trash included, by id (a purged one is absent). */
async function tasksOf(tab: Tab): Promise<Map<string, Task>> {
  const { tasks } = await tab.call('task:sync', { since: 0 });
  return new Map(tasks.map((t) => [t.id, t]));
}
const taskOf = async (tab: Tab, id: string) => (await tasksOf(tab)).get(id);

/** A task as the user sees it: all but what any change moves on. */
const fields = ({ version: _v, seq: _s, updatedAt: _u, ...rest }: Task) => rest;

const taskEvents = (tab: Tab, from: number) => tab.received.slice(from).filter((r) => r.event === 'task:changed' || r.event === 'task:removed');

/** Waits until every tab got `count` task events after its mark, and answers them: seq rising by 1 from `afterSeq`. */
async function expectTaskEvents(both: Tab[], marks: number[], count: number, afterSeq: number) {
  const seen = [];
  for (const [i, tab] of both.entries()) {
    await expect.poll(() => taskEvents(tab, marks[i]!).length, { timeout: 5_000 }).toBe(count);
    const events = taskEvents(tab, marks[i]!);
    expect(events.map((e) => e.data.seq)).toEqual(events.map((_, k) => afterSeq + 1 + k));
    seen.push(events.map(({ event, data }) => ({ event, data })));
  }
  expect(seen[1]).toEqual(seen[0]);
  return seen[0]!;
}

const marksOf = (both: Tab[]) => both.map((t) => t.received.length);
const seqOf = async (tab: Tab) => (await tab.call('task:sync', { since: 0 })).seq;
const inAnHour = () => new Date(Math.ceil((Date.now() + 3_600_000) / 1000) * 1000).toISOString();

describe('CHAT-15 undo of each tool kind', () => {
  it('[CHAT-15] create_task: chat:tool carries the undo to every tab and in the stored message, not to the model; undone from the other node, the task is gone as ordinary task events', async () => {
    const { tabA, tabB, both } = await twoTabs();
    const seqBefore = await seqOf(tabA);
    const { message, undo } = await ask(both, 'add task: Buy oat milk');
    const created = [...(await tasksOf(tabA)).values()].find((t) => t.title === 'Buy oat milk')!;
    expect(created.version).toBe(1);
    expect(undo).toEqual({
      at: created.updatedAt,
      steps: [
        { event: 'task:delete', payload: { id: created.id, expectedVersion: 1 } },
        { event: 'task:purge', payload: { id: created.id, expectedVersion: 2 } },
      ],
    });
    // Stored with the message: a tab that opens the conversation later gets it too.
    const { messages } = await tabB.call('chat:history', { conversationId: message.conversationId });
    expect(messages.at(-1)!.toolCalls[0]!.undo).toEqual(undo);
    // Claude was told the result, not the undo.
    const followUp = cluster.upstream.requests.filter((r) => JSON.stringify(r.body).includes('tool_result')).at(-1)!;
    const told = JSON.stringify((followUp.body as { messages: unknown }).messages);
    expect(told).toContain('Buy oat milk');
    expect(told).not.toContain('task:purge');
    expect(told).not.toContain('"undo"');

    const seq = await seqOf(tabA);
    expect(seq).toBe(seqBefore + 1);
    const marks = marksOf(both);
    const acks = await runUndo(tabB, undo!);
    expect(acks).toEqual([
      { ok: true, data: { task: expect.objectContaining({ id: created.id, status: 'deleted', version: 2 }) } },
      { ok: true, data: { id: created.id } },
    ]);
    const events = await expectTaskEvents(both, marks, 2, seq);
    expect(events).toEqual([
      { event: 'task:changed', data: { seq: seq + 1, task: expect.objectContaining({ id: created.id, status: 'deleted', version: 2 }) } },
      { event: 'task:removed', data: { seq: seq + 2, id: created.id } },
    ]);
    expect(await taskOf(tabA, created.id)).toBeUndefined();
    expect((await tabA.call('task:list', { view: 'deleted' })).tasks).toEqual([]);
    // Twice: the task is gone, so there is nothing to undo.
    expect((await runUndo(tabA, undo!))[0]).toMatchObject({ ok: false, error: { code: ErrorCode.NOT_FOUND } });
  });

  it('[CHAT-15] update_task: every field the tool changed comes back, as one task:update with the version it produced', async () => {
    const { tabA, both } = await twoTabs();
    const dep = (await tabA.call('task:create', { title: 'Book the venue' })).task;
    const before = (
      await tabA.call('task:create', {
        title: 'Plan the party',
        description: 'For Ana',
        deadline: '2031-05-01',
        intensity: 2,
        status: 'in_progress',
        project: 'Home',
        dependencies: [dep.id],
        recurrence: { type: 'yearly', interval: 1, endDate: null },
        remindAt: inAnHour(),
      })
    ).task;
    cluster.upstream.enqueue(
      {
        kind: 'tool_use',
        name: 'update_task',
        input: {
          id: before.id,
          title: 'Plan the surprise party',
          description: 'For Ana, at the lake',
          deadline: '2031-06-01',
          intensity: 4,
          status: 'waiting_on',
          project: null,
          waitingOn: 'Ana',
          dependencies: [],
          recurrence: null,
          remindAt: null,
        },
        text: 'Updating it.',
      },
      { kind: 'text', text: 'Updated.' },
    );
    const { undo } = await ask(both, 'change the party plan');
    const after = (await taskOf(tabA, before.id))!;
    expect(after).toMatchObject({ title: 'Plan the surprise party', version: 2, remindAt: null, recurrence: null });
    expect(undo!.steps).toEqual([
      {
        event: 'task:update',
        payload: {
          id: before.id,
          expectedVersion: 2,
          patch: {
            title: 'Plan the party',
            description: 'For Ana',
            deadline: '2031-05-01',
            intensity: 2,
            status: 'in_progress',
            project: 'Home',
            waitingOn: null,
            dependencies: [dep.id],
            recurrence: { type: 'yearly', interval: 1, endDate: null },
            remindAt: before.remindAt,
          },
        },
      },
    ]);
    const seq = await seqOf(tabA);
    const marks = marksOf(both);
    expect((await runUndo(tabA, undo!)).every((ack) => ack.ok)).toBe(true);
    const events = await expectTaskEvents(both, marks, 1, seq);
    expect(events[0]!.data.task).toMatchObject({ id: before.id, version: 3 });
    expect(fields((await taskOf(tabA, before.id))!)).toEqual(fields(before));

    // Twice: the task is at version 3 now, not 2.
    const again = await runUndo(tabA, undo!);
    expect(again).toEqual([{ ok: false, error: expect.objectContaining({ code: ErrorCode.CONFLICT, details: { task: expect.objectContaining({ id: before.id, version: 3 }) } }) }]);
    expect((await taskOf(tabA, before.id))!.version).toBe(3);
    expect(await seqOf(tabA)).toBe(seq + 1);
  });

  it('[CHAT-15] update_task from the offline model: a moved reminder, and a cleared one, come back', async () => {
    const { tabA, both } = await twoTabs();
    const { undo: created } = await ask(both, 'remind me to call Bob in 20 minutes');
    const before = [...(await tasksOf(tabA)).values()].find((t) => t.title === 'call Bob')!;
    expect(before.remindAt).not.toBeNull();
    expect(created!.steps.map((s) => s.event)).toEqual(['task:delete', 'task:purge']);

    const { call, undo: moved } = await ask(both, 'move the reminder of call Bob to in 2 hours');
    expect(call.name).toBe('update_task');
    expect((await taskOf(tabA, before.id))!.remindAt).not.toBe(before.remindAt);
    expect(moved!.steps).toEqual([{ event: 'task:update', payload: { id: before.id, expectedVersion: 2, patch: { remindAt: before.remindAt } } }]);
    expect((await runUndo(tabA, moved!)).every((ack) => ack.ok)).toBe(true);
    expect(fields((await taskOf(tabA, before.id))!)).toEqual(fields(before));

    const { undo: cleared } = await ask(both, 'clear the reminder of call Bob');
    expect((await taskOf(tabA, before.id))!.remindAt).toBeNull();
    expect(cleared!.steps).toEqual([{ event: 'task:update', payload: { id: before.id, expectedVersion: 4, patch: { remindAt: before.remindAt } } }]);
    expect((await runUndo(both[1]!, cleared!)).every((ack) => ack.ok)).toBe(true);
    expect(fields((await taskOf(tabA, before.id))!)).toEqual(fields(before));
  });

  it('[CHAT-15] complete_task of a recurring task with notes and a reminder: reopened as it was, its next occurrence gone; completed again, it makes one again', async () => {
    const { tabA, both } = await twoTabs();
    const before = (
      await tabA.call('task:create', {
        title: 'Pay the rent',
        description: 'Flat 3',
        deadline: '2031-01-31',
        status: 'in_progress',
        recurrence: { type: 'monthly', interval: 1, endDate: null },
        remindAt: inAnHour(),
      })
    ).task;
    cluster.upstream.enqueue({ kind: 'tool_use', name: 'complete_task', input: { id: before.id, notes: 'paid by transfer' } }, { kind: 'text', text: 'Done.' });
    const seqBefore = await seqOf(tabA);
    const { undo } = await ask(both, 'I paid the rent');
    const all = await tasksOf(tabA);
    const done = all.get(before.id)!;
    const next = [...all.values()].find((t) => t.id !== before.id)!;
    expect(done).toMatchObject({ status: 'completed', description: 'Flat 3\n\nCompleted: paid by transfer', remindAt: null, version: 2 });
    expect(next).toMatchObject({ title: 'Pay the rent', deadline: '2031-02-28', version: 1 });
    expect(undo!.steps).toEqual([
      { event: 'task:update', payload: { id: before.id, expectedVersion: 2, patch: { status: 'in_progress', description: 'Flat 3', remindAt: before.remindAt } } },
      { event: 'task:delete', payload: { id: next.id, expectedVersion: 1 } },
      { event: 'task:purge', payload: { id: next.id, expectedVersion: 2 } },
    ]);

    const seq = await seqOf(tabA);
    expect(seq).toBe(seqBefore + 2);
    const marks = marksOf(both);
    expect((await runUndo(both[1]!, undo!)).every((ack) => ack.ok)).toBe(true);
    const events = await expectTaskEvents(both, marks, 3, seq);
    expect(events.map((e) => [e.event, e.data.task?.id ?? e.data.id, e.data.task?.version])).toEqual([
      ['task:changed', before.id, 3],
      ['task:changed', next.id, 2],
      ['task:removed', next.id, undefined],
    ]);
    const back = await tasksOf(tabA);
    expect([...back.keys()]).toEqual([before.id]);
    expect(fields(back.get(before.id)!)).toEqual(fields(before));

    // Completed again (the offline model's phrase): exactly one next occurrence, a new one.
    await ask(both, 'complete Pay the rent');
    const again = await tasksOf(tabA);
    const occurrences = [...again.values()].filter((t) => t.id !== before.id);
    expect(occurrences).toHaveLength(1);
    expect(occurrences[0]).toMatchObject({ deadline: '2031-02-28', status: 'not_started' });
    expect(occurrences[0]!.id).not.toBe(next.id);
  });

  it('[CHAT-15] delete_task: restored with its status and reminder; restore_task: back to the trash', async () => {
    const { tabA, both } = await twoTabs();
    const before = (await tabA.call('task:create', { title: 'Water the plants', status: 'waiting_on', waitingOn: 'rain', remindAt: inAnHour() })).task;
    const { undo: deleted } = await ask(both, 'delete Water the plants');
    expect((await taskOf(tabA, before.id))!).toMatchObject({ status: 'deleted', remindAt: null });
    expect(deleted!.steps).toEqual([
      { event: 'task:restore', payload: { id: before.id, expectedVersion: 2 } },
      { event: 'task:update', payload: { id: before.id, expectedVersion: 3, patch: { remindAt: before.remindAt } } },
    ]);
    const seq = await seqOf(tabA);
    const marks = marksOf(both);
    expect((await runUndo(both[1]!, deleted!)).every((ack) => ack.ok)).toBe(true);
    await expectTaskEvents(both, marks, 2, seq);
    expect(fields((await taskOf(tabA, before.id))!)).toEqual(fields(before));

    // restore_task (scripted: the offline model has no phrase for it).
    const trashed = (await tabA.call('task:delete', { id: before.id })).task;
    cluster.upstream.enqueue({ kind: 'tool_use', name: 'restore_task', input: { id: before.id } }, { kind: 'text', text: 'Restored.' });
    const { undo: restored } = await ask(both, 'bring back the plants');
    expect((await taskOf(tabA, before.id))!).toMatchObject({ status: 'waiting_on', version: trashed.version + 1 });
    expect(restored!.steps).toEqual([{ event: 'task:delete', payload: { id: before.id, expectedVersion: trashed.version + 1 } }]);
    expect((await runUndo(tabA, restored!)).every((ack) => ack.ok)).toBe(true);
    // Back in the trash as it was; its trash time is the undo's (no event sets it).
    const { deletedAt, ...rest } = fields((await taskOf(tabA, before.id))!);
    const { deletedAt: trashedAt, ...trashedRest } = fields(trashed);
    expect(rest).toEqual(trashedRest);
    expect(Date.parse(deletedAt!)).toBeGreaterThanOrEqual(Date.parse(trashedAt!));
  });
});

describe('CHAT-15 a change made since is never clobbered', () => {
  it('[CHAT-15] an edit from another tab after the tool change makes the undo CONFLICT, and the edit stays', async () => {
    const { tabA, tabB, both } = await twoTabs();
    const { undo } = await ask(both, 'add task: Call the plumber');
    const id = undo!.steps[0]!.payload.id;
    const edited = (await tabB.call('task:update', { id, expectedVersion: 1, patch: { title: 'Call the plumber today', intensity: 5 } })).task;
    const seq = await seqOf(tabA);
    const marks = marksOf(both);
    const acks = await runUndo(tabA, undo!);
    expect(acks).toEqual([{ ok: false, error: expect.objectContaining({ code: ErrorCode.CONFLICT, details: { task: edited } }) }]);
    expect(await taskOf(tabA, id)).toEqual(edited);
    expect(await seqOf(tabA)).toBe(seq);
    // Nothing was broadcast.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(both.map((tab, i) => taskEvents(tab, marks[i]!).length)).toEqual([0, 0]);
  });

  it('[CHAT-15] a recurring completion whose next occurrence was edited since: the task is reopened, the edited occurrence stays', async () => {
    const { tabA, tabB, both } = await twoTabs();
    const before = (await tabA.call('task:create', { title: 'Water the garden', deadline: '2031-03-01', recurrence: { type: 'weekly', interval: 1, endDate: null } })).task;
    const { undo } = await ask(both, 'complete Water the garden');
    const nextId = undo!.steps[1]!.payload.id;
    const edited = (await tabB.call('task:update', { id: nextId, patch: { title: 'Water the garden and the pots' } })).task;
    const acks = await runUndo(tabA, undo!);
    expect(acks.map((ack) => ack.ok)).toEqual([true, false]);
    expect(acks[1]!.error).toMatchObject({ code: ErrorCode.CONFLICT, details: { task: edited } });
    const after = await tasksOf(tabA);
    expect(after.get(nextId)).toEqual(edited);
    expect(fields(after.get(before.id)!)).toEqual(fields(before));
  });
});
