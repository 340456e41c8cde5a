/**
 * The assistant (PROTOCOL §6.2) through the real Anthropic SDK against the
 * project's own scriptable endpoint, on two production-mode nodes.
 */
import { describe, expect, inject, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { testDatabaseUrl, productionEnv, uniquePrefix } from './support/env.js';
import { startNodeProcess, startTestApp } from './support/app.js';
import { signUp } from './support/users.js';
import { useChatCluster, doneOf } from './support/chat-cluster.js';
import { connectReady, type Tab } from './support/sockets.js';
import { ErrorCode } from '../shared/errors.js';
import { FLUSH_SLICE, HEARTBEAT_TTL_MS } from '../server/features/chat/assistant.js';

// The upstream's idle timeout: short for the stalled-stream test, yet long enough that ~50 streams starting at once
// on a busy 2-core CI machine (both nodes and the upstream in one process) do not see their first event late.
const cluster = useChatCluster('chat', { UPSTREAM_TIMEOUT_SECONDS: '3' });
const { track } = cluster;
const twoTabs = () => cluster.twoTabs({ timezone: 'America/Los_Angeles' });

/** The system prompt's text: its blocks, the cached one first (CHAT-12). */
const systemOf = (body: { system: { text: string }[] }) => body.system.map((block) => block.text).join('\n\n');

const LONG = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ') + '.';

const deltasOf = (tab: Tab, messageId: string) =>
  tab.received.filter((r) => r.event === 'chat:delta' && r.data.messageId === messageId).map((r) => r.data);

describe('CHAT-2 / CHAT-3 streams visible to every tab', () => {
  it('[CHAT-2][CHAT-3] both tabs on two nodes get every delta in order; a tab joining mid-stream gets the text so far, then exactly the rest', async () => {
    const { user, tabA, tabB } = await twoTabs();
    cluster.upstream.enqueue({ kind: 'text', text: LONG, chunkSize: 6, delayMs: 15 });
    const sent = await tabA.call('chat:send', { content: 'Tell me a long story' });
    const id = sent.assistantMessageId;
    await tabB.waitFor('chat:delta', (d) => d.messageId === id && d.seq >= 5);
    // A third tab opens mid-answer, on the other node.
    const late = track(await connectReady(cluster.b.url, user.auth.accessToken));
    const history = await late.call('chat:history', { conversationId: sent.conversationId });
    const streaming = history.messages.find((m) => m.id === id)!;
    expect(streaming.status).toBe('streaming');
    expect(streaming.lastSeq).not.toBeNull();
    const { message } = await doneOf(late, id);
    await doneOf(tabA, id);
    await doneOf(tabB, id);

    expect(message.status).toBe('complete');
    expect(message.content).toBe(LONG);
    for (const tab of [tabA, tabB]) {
      const deltas = deltasOf(tab, id);
      expect(deltas.map((d) => d.seq)).toEqual(deltas.map((_, i) => i));
      expect(deltas.map((d) => d.text).join('')).toBe(message.content);
      expect(message.lastSeq).toBe(deltas.length - 1);
    }
    const rest = deltasOf(late, id).filter((d) => d.seq > streaming.lastSeq!);
    expect(rest[0]?.seq).toBe(streaming.lastSeq! + 1);
    expect(streaming.content + rest.map((d) => d.text).join('')).toBe(message.content);
    // Deltas are coalesced, not one emit per upstream token.
    expect(deltasOf(tabA, id).length).toBeLessThan(Math.ceil(LONG.length / 6));
    const stored = await cluster.a.deps.orm.em.getConnection().execute('select content, status, usage, model from messages where id = ?', [id]);
    expect(stored[0]).toMatchObject({ content: LONG, status: 'complete', model: 'claude-test-model' });
    expect(stored[0]!.usage.outputTokens).toBeGreaterThan(0);
  });
  it('[CHAT-2] more streams at once than one flush slice: each tab gets every delta of its own answers, in order, and no one else\'s', async () => {
    // Two answers per user (CHAT-1's limit), all generated on node a: more streams than FLUSH_SLICE wait at each tick.
    const users = await Promise.all(Array.from({ length: Math.ceil(FLUSH_SLICE / 2) + 2 }, () => twoTabs()));
    const streams = users.length * 2;
    cluster.upstream.enqueue(...Array.from({ length: streams }, () => ({ kind: 'text' as const, text: LONG, chunkSize: 6, delayMs: 15 })));
    let mostAtOnce = 0;
    const watch = setInterval(() => (mostAtOnce = Math.max(mostAtOnce, cluster.a.deps.assistant.active)), 5);
    const sent = await Promise.all(
      users.map(async ({ tabA }) => [await tabA.call('chat:send', { content: 'one' }), await tabA.call('chat:send', { content: 'two' })]),
    );
    const done = await Promise.all(sent.flat().map((s, i) => doneOf(users[Math.floor(i / 2)]!.tabB, s.assistantMessageId)));
    clearInterval(watch);
    expect(mostAtOnce).toBeGreaterThan(FLUSH_SLICE);
    // Every answer complete first (an answer cut by the upstream timeout would explain missing deltas).
    expect(done.map(({ message }) => [message.status, message.error?.message ?? null])).toEqual(done.map(() => ['complete', null]));

    users.forEach(({ tabA, tabB }, u) => {
      const mine = new Set(sent[u]!.map((s) => s.assistantMessageId));
      for (const tab of [tabA, tabB]) {
        expect(tab.received.filter((r) => r.event === 'chat:delta' && !mine.has(r.data.messageId))).toEqual([]);
        for (const id of mine) {
          const deltas = deltasOf(tab, id);
          expect(deltas.map((d) => d.seq)).toEqual(deltas.map((_, i) => i));
          expect(deltas.map((d) => d.text).join('')).toBe(LONG);
        }
      }
    });
    expect(done.every(({ message }) => message.status === 'complete' && message.content === LONG)).toBe(true);
  });
});

describe('CHAT-4 tools change tasks live', () => {
  it('[CHAT-4] a scripted create_task: both tabs get task:changed before chat:done; the task is the user\'s with the next seq', async () => {
    const { user, tabA, tabB } = await twoTabs();
    cluster.upstream.enqueue({ kind: 'tool_use', name: 'create_task', input: { title: 'Book the dentist', deadline: '2031-03-01' }, text: 'On it.' });
    cluster.upstream.enqueue({ kind: 'text', text: 'Booked it as a task.' });
    const sent = await tabA.call('chat:send', { content: 'remind me to book the dentist' });
    const id = sent.assistantMessageId;
    const { message } = await doneOf(tabB, id);
    for (const tab of [tabA, tabB]) {
      await doneOf(tab, id);
      const changedAt = tab.received.findIndex((r) => r.event === 'task:changed');
      const toolAt = tab.received.findIndex((r) => r.event === 'chat:tool' && r.data.messageId === id);
      const doneAt = tab.received.findIndex((r) => r.event === 'chat:done' && r.data.message.id === id);
      expect(changedAt).toBeGreaterThanOrEqual(0);
      expect(changedAt).toBeLessThan(doneAt);
      expect(toolAt).toBeLessThan(doneAt);
      expect(tab.received[changedAt]!.data).toMatchObject({ seq: 1, task: { title: 'Book the dentist', deadline: '2031-03-01' } });
    }
    expect(message.toolCalls).toHaveLength(1);
    expect(message.toolCalls[0]).toMatchObject({ name: 'create_task', status: 'ok' });
    expect(message.content).toBe('On it.\n\nBooked it as a task.');
    const list = await tabB.call('task:list', {});
    expect(list.seq).toBe(1);
    expect(list.tasks.map((t) => t.title)).toEqual(['Book the dentist']);
    const owner = await cluster.a.deps.orm.em.getConnection().execute('select user_id from tasks where title = ?', ['Book the dentist']);
    expect(owner.map((r) => r.user_id)).toContain(user.auth.user.id);
    // The tool result went back to Claude.
    const followUp = cluster.upstream.requests.filter((r) => JSON.stringify(r.body).includes('tool_result')).at(-1)!;
    expect(JSON.stringify(followUp.body)).toContain('Book the dentist');
  });

  it('[CHAT-4][TASK-6] a tool input naming another user\'s task fails as NOT_FOUND inside the loop', async () => {
    const victim = await signUp(cluster.a.url);
    const victimTab = track(await connectReady(cluster.a.url, victim.auth.accessToken));
    const { task } = await victimTab.call('task:create', { title: 'private' });
    const { tabA } = await twoTabs();
    cluster.upstream.enqueue({ kind: 'tool_use', name: 'complete_task', input: { id: task.id } });
    cluster.upstream.enqueue({ kind: 'text', text: 'That did not work.' });
    const sent = await tabA.call('chat:send', { content: 'complete private' });
    const { message } = await doneOf(tabA, sent.assistantMessageId);
    expect(message.toolCalls[0]).toMatchObject({ name: 'complete_task', status: 'error', result: { code: ErrorCode.NOT_FOUND } });
    expect(message.status).toBe('complete');
    expect((await victimTab.call('task:list', {})).tasks[0]!.status).toBe('not_started');
    const followUp = cluster.upstream.requests.at(-1)!;
    expect(JSON.stringify(followUp.body)).toContain('"is_error":true');
  });
});

describe('CHAT-5 cancel', () => {
  it('[CHAT-5] cancel mid-stream aborts the upstream request, keeps the partial text as cancelled, and every tab gets chat:done', async () => {
    const { tabA, tabB } = await twoTabs();
    cluster.upstream.enqueue({ kind: 'text', text: LONG, chunkSize: 4, delayMs: 40 });
    const sent = await tabA.call('chat:send', { content: 'go on and on' });
    const id = sent.assistantMessageId;
    const request = await cluster.upstream.waitForRequest((r) => JSON.stringify(r.body).includes('go on and on'));
    await tabA.waitFor('chat:delta', (d) => d.messageId === id && d.seq >= 2);
    // Cancelled from the tab on the other node.
    const { message } = await tabB.call('chat:cancel', { messageId: id });
    expect(message.status).toBe('cancelled');
    expect(message.content.length).toBeGreaterThan(0);
    expect(LONG.startsWith(message.content)).toBe(true);
    await cluster.upstream.waitForAbort(request.id);
    for (const tab of [tabA, tabB]) expect((await doneOf(tab, id)).message.status).toBe('cancelled');
    const deltas = deltasOf(tabA, id);
    expect(deltas.map((d) => d.text).join('')).toBe(message.content);
    // Cancelling a finished message answers it unchanged.
    expect((await tabA.call('chat:cancel', { messageId: id })).message).toEqual(message);
  });

  it('[CHAT-5] closing a tab does not cancel the answer', async () => {
    const { tabA, tabB } = await twoTabs();
    cluster.upstream.enqueue({ kind: 'text', text: 'one two three four five six seven', delayMs: 20 });
    const sent = await tabA.call('chat:send', { content: 'count' });
    tabA.close();
    const { message } = await doneOf(tabB, sent.assistantMessageId);
    expect(message.status).toBe('complete');
    expect(message.content).toBe('one two three four five six seven');
  });
});

describe('CHAT-6 upstream failures', () => {
  const failures = [
    ['a 529 overload', { kind: 'error', status: 529, errorType: 'overloaded_error' }, 'overloaded'],
    ['a 500', { kind: 'error', status: 500, errorType: 'api_error' }, ''],
    ['a cut stream', { kind: 'cut', text: 'partial words then the wire goes', afterChunks: 3 }, ''],
    ['a stalled stream (timeout)', { kind: 'stall', text: 'starts then stalls', afterChunks: 2 }, 'responding'],
  ] as const;
  for (const [name, script, fragment] of failures) {
    it(`[CHAT-6] ${name} ends the message as error/UPSTREAM keeping the partial text, and the next message works`, async () => {
      const { tabA, tabB } = await twoTabs();
      cluster.upstream.enqueue(script as never);
      const sent = await tabA.call('chat:send', { content: `fail with ${name}` });
      const { message } = await doneOf(tabB, sent.assistantMessageId);
      expect(message.status).toBe('error');
      expect(message.error?.code).toBe(ErrorCode.UPSTREAM);
      if (fragment) expect(message.error?.message).toContain(fragment);
      expect(message.error?.message).not.toMatch(/at .*\.js|stack/i);
      if (script.kind === 'cut' || script.kind === 'stall') {
        expect(message.content.length).toBeGreaterThan(0);
        expect(deltasOf(tabA, message.id).map((d) => d.text).join('')).toBe(message.content);
      }
      cluster.upstream.enqueue({ kind: 'text', text: 'All good now.' });
      const next = await tabA.call('chat:send', { conversationId: sent.conversationId, content: 'try again' });
      expect((await doneOf(tabB, next.assistantMessageId)).message).toMatchObject({ status: 'complete', content: 'All good now.' });
    });
  }
});

describe('CHAT-1 one generation at a time, safe retries', () => {
  it('[CHAT-1] chat:send during a generation is CONFLICT; a retried id returns the first result; the id with other content is CONFLICT', async () => {
    const { tabA, tabB } = await twoTabs();
    cluster.upstream.enqueue({ kind: 'text', text: LONG, delayMs: 10 });
    const id = randomUUID();
    const first = await tabA.call('chat:send', { id, content: 'first' });
    const retry = await tabB.call('chat:send', { id, content: 'first' });
    expect(retry).toEqual(first);
    const other = await tabB.request('chat:send', { id, content: 'different' });
    expect(other).toMatchObject({ ok: false, error: { code: ErrorCode.CONFLICT } });
    const busy = await tabB.request('chat:send', { conversationId: first.conversationId, content: 'me too' });
    expect(busy).toMatchObject({ ok: false, error: { code: ErrorCode.CONFLICT } });
    await doneOf(tabA, first.assistantMessageId);
    const history = await tabA.call('chat:history', { conversationId: first.conversationId });
    expect(history.messages.map((m) => m.role)).toEqual(['user', 'assistant']);
  });

  it('[CHAT-1] at most two generations at once per user', async () => {
    const { tabA } = await twoTabs();
    cluster.upstream.enqueue({ kind: 'text', text: LONG, delayMs: 10 }, { kind: 'text', text: LONG, delayMs: 10 });
    const one = await tabA.call('chat:send', { content: 'one' });
    const two = await tabA.call('chat:send', { content: 'two' });
    expect(await tabA.request('chat:send', { content: 'three' })).toMatchObject({ ok: false, error: { code: ErrorCode.CONFLICT } });
    await Promise.all([doneOf(tabA, one.assistantMessageId), doneOf(tabA, two.assistantMessageId)]);
  });

  it('[RT-6] chat:send beyond CHAT_MESSAGES_PER_MINUTE is RATE_LIMITED', async () => {
    await using node = await startTestApp(productionEnv({ ...cluster.shared, REDIS_PREFIX: uniquePrefix(), CHAT_MESSAGES_PER_MINUTE: '2' }));
    const user = await signUp(node.url);
    const tab = track(await connectReady(node.url, user.auth.accessToken));
    const results = [];
    for (let i = 0; i < 3; i++) {
      const res = await tab.request('chat:send', { content: `hello ${i}` });
      results.push(res);
      if (res.ok) await doneOf(tab, res.data.assistantMessageId);
    }
    expect(results.map((r) => r.ok)).toEqual([true, true, false]);
    expect(results[2]).toMatchObject({ ok: false, error: { code: ErrorCode.RATE_LIMITED } });
  });

  it('[RT-6] a chat:send counts against SOCKET_EVENTS_PER_MINUTE too', async () => {
    await using node = await startTestApp(productionEnv({ ...cluster.shared, REDIS_PREFIX: uniquePrefix(), SOCKET_EVENTS_PER_MINUTE: '3', CHAT_MESSAGES_PER_MINUTE: '100' }));
    const user = await signUp(node.url);
    const tab = track(await connectReady(node.url, user.auth.accessToken));
    const first = await tab.request('chat:send', { content: 'one' });
    expect(first.ok).toBe(true);
    if (first.ok) await doneOf(tab, first.data.assistantMessageId);
    const second = await tab.request('chat:send', { conversationId: first.ok ? first.data.conversationId : undefined, content: 'two' });
    expect(second.ok).toBe(true);
    if (second.ok) await doneOf(tab, second.data.assistantMessageId);
    expect((await tab.request('conversation:list', {})).ok).toBe(true);
    expect(await tab.request('conversation:list', {})).toMatchObject({ ok: false, error: { code: ErrorCode.RATE_LIMITED } });
  });
});

describe('CHAT-8 the request Claude receives', () => {
  it('[CHAT-8] carries the model, stream: true, the tools and a system prompt with the user\'s tasks and the date in their time zone', async () => {
    const user = await signUp(cluster.a.url, { timezone: 'Pacific/Kiritimati', fullName: 'Kiri' });
    const tab = track(await connectReady(cluster.a.url, user.auth.accessToken));
    await tab.call('task:create', { title: 'Water the plants', deadline: '2020-01-01' });
    await tab.call('task:create', { title: 'Call the bank' });
    cluster.upstream.enqueue({ kind: 'text', text: 'Sure.' });
    const sent = await tab.call('chat:send', { content: 'What is on my plate?' });
    await doneOf(tab, sent.assistantMessageId);
    const req = cluster.upstream.requests.filter((r) => JSON.stringify(r.body).includes('What is on my plate?')).at(-1)!;
    const body = req.body as any;
    expect(body.model).toBe('claude-test-model');
    expect(body.stream).toBe(true);
    expect(body.max_tokens).toBeLessThanOrEqual(4096);
    expect(body.tools.map((t: any) => t.name).sort()).toEqual(
      ['complete_task', 'create_task', 'delete_task', 'list_tasks', 'next_task', 'restore_task', 'search_history', 'update_task'].sort(),
    );
    const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'Pacific/Kiritimati' }).format(new Date());
    const system = systemOf(body);
    expect(system).toContain(today);
    expect(system).toContain('Pacific/Kiritimati');
    expect(system).toContain('Water the plants');
    expect(system).toContain('Call the bank');
    expect(system).toMatch(/OVERDUE/);
    expect(body.messages.at(-1)).toEqual({ role: 'user', content: 'What is on my plate?' });
  });

  it('[CHAT-8] a follow-up carries the conversation so far, oldest first, and only the open tasks of that moment', async () => {
    const user = await signUp(cluster.a.url);
    const tab = track(await connectReady(cluster.a.url, user.auth.accessToken));
    const done = await tab.call('task:create', { title: 'File the taxes' });
    cluster.upstream.enqueue({ kind: 'text', text: 'Paris.' });
    const first = await tab.call('chat:send', { content: 'Capital of France?' });
    await doneOf(tab, first.assistantMessageId);
    await tab.call('task:complete', { id: done.task.id });
    await tab.call('task:create', { title: 'Book the train' });
    cluster.upstream.enqueue({ kind: 'text', text: 'About two million.' });
    const second = await tab.call('chat:send', { conversationId: first.conversationId, content: 'And its population?' });
    expect(second.conversationId).toBe(first.conversationId);
    await doneOf(tab, second.assistantMessageId);
    const body = cluster.upstream.requests.filter((r) => JSON.stringify(r.body).includes('And its population?')).at(-1)!.body as any;
    expect(body.messages).toEqual([
      { role: 'user', content: 'Capital of France?' },
      { role: 'assistant', content: 'Paris.' },
      { role: 'user', content: 'And its population?' },
    ]);
    expect(systemOf(body)).toContain('Book the train');
    expect(systemOf(body)).not.toContain('File the taxes');
  });
});

describe('CHAT-9 and conversations', () => {
  it('[CHAT-9] another user\'s conversation or message is NOT_FOUND everywhere', async () => {
    const { tabA } = await twoTabs();
    cluster.upstream.enqueue({ kind: 'text', text: 'mine' });
    const sent = await tabA.call('chat:send', { content: 'secret talk' });
    await doneOf(tabA, sent.assistantMessageId);
    const stranger = await signUp(cluster.b.url);
    const s = track(await connectReady(cluster.b.url, stranger.auth.accessToken));
    for (const res of [
      await s.request('chat:history', { conversationId: sent.conversationId }),
      await s.request('conversation:rename', { id: sent.conversationId, title: 'hijacked' }),
      await s.request('conversation:delete', { id: sent.conversationId }),
      await s.request('chat:send', { conversationId: sent.conversationId, content: 'hi' }),
      await s.request('chat:cancel', { messageId: sent.assistantMessageId }),
    ]) {
      expect(res).toMatchObject({ ok: false, error: { code: ErrorCode.NOT_FOUND } });
    }
    expect((await s.call('conversation:list', {})).conversations).toEqual([]);
  });

  it('an answer that ends, or is cancelled, tells every tab its conversation is no longer generating, bumped to its end', async () => {
    const { tabA, tabB } = await twoTabs();
    cluster.upstream.enqueue({ kind: 'text', text: 'done soon' });
    const sent = await tabA.call('chat:send', { content: 'quick one' });
    const started = (await tabB.waitFor('conversation:changed', (d) => d.conversation.id === sent.conversationId && d.conversation.generating)).conversation;
    const { message } = await doneOf(tabB, sent.assistantMessageId);
    const after = (await tabB.waitFor('conversation:changed', (d) => d.conversation.id === sent.conversationId && !d.conversation.generating)).conversation;
    expect(after).toMatchObject({ id: sent.conversationId, title: 'quick one', generating: false, createdAt: started.createdAt });
    expect(after.updatedAt >= message.createdAt).toBe(true);
    expect((await tabA.call('conversation:list', {})).conversations[0]).toEqual(after);

    cluster.upstream.enqueue({ kind: 'text', text: LONG, delayMs: 20 });
    const second = await tabA.call('chat:send', { conversationId: sent.conversationId, content: 'a long one' });
    const sending = (await tabA.call('conversation:list', {})).conversations[0]!;
    expect(sending.generating).toBe(true);
    const { message: cancelled } = await tabA.call('chat:cancel', { messageId: second.assistantMessageId });
    expect(cancelled.status).toBe('cancelled');
    const ended = (await tabB.waitFor('conversation:changed', (d) => d.conversation.id === sent.conversationId && !d.conversation.generating && d.conversation.updatedAt > sending.updatedAt)).conversation;
    expect((await tabA.call('conversation:list', {})).conversations[0]).toEqual(ended);
  });

  it('lists newest first with a generating flag, renames and deletes with broadcasts', async () => {
    const { tabA, tabB } = await twoTabs();
    cluster.upstream.enqueue({ kind: 'text', text: 'first answer' });
    const one = await tabA.call('chat:send', { content: 'The very first question about my weekend plans and more' });
    await doneOf(tabA, one.assistantMessageId);
    cluster.upstream.enqueue({ kind: 'text', text: LONG, delayMs: 15 });
    const two = await tabA.call('chat:send', { content: 'second' });
    const listed = await tabB.call('conversation:list', {});
    expect(listed.conversations.map((c) => c.id)).toEqual([two.conversationId, one.conversationId]);
    expect(listed.conversations.map((c) => c.generating)).toEqual([true, false]);
    expect(listed.conversations[1]!.title).toBe('The very first question about my weekend plans and more');
    await doneOf(tabA, two.assistantMessageId);
    expect((await tabB.call('conversation:list', {})).conversations[0]!.generating).toBe(false);
    const renamed = await tabB.call('conversation:rename', { id: one.conversationId, title: 'Weekend' });
    expect(renamed.conversation.title).toBe('Weekend');
    await tabA.waitFor('conversation:changed', (d) => d.conversation.title === 'Weekend');
    await tabB.call('conversation:delete', { id: one.conversationId });
    await tabA.waitFor('conversation:removed', (d) => d.id === one.conversationId);
    expect((await tabA.request('chat:history', { conversationId: one.conversationId }))).toMatchObject({ ok: false, error: { code: ErrorCode.NOT_FOUND } });
    const page = await tabA.call('conversation:list', { limit: 1 });
    expect(page.conversations).toHaveLength(1);
  });
});

describe('CHAT-7 a long answer outlives its first heartbeat', () => {
  it('[CHAT-7] an answer longer than the heartbeat TTL stays streaming through another node\'s sweep, and completes', async () => {
    const { tabA, tabB } = await twoTabs();
    // About 20 s of text: past HEARTBEAT_TTL_MS, so only the node's periodic beat keeps the answer alive.
    cluster.upstream.enqueue({ kind: 'text', text: LONG, chunkSize: 4, delayMs: 200 });
    const sent = await tabA.call('chat:send', { content: 'a long answer please' });
    const started = Date.now();
    await tabB.waitFor('chat:delta', (d) => d.messageId === sent.assistantMessageId);
    await new Promise((resolve) => setTimeout(resolve, HEARTBEAT_TTL_MS + 2_000 - (Date.now() - started)));
    // The other node's sweeper, as it runs every 10 s: the message is older than the TTL, so its heartbeat decides.
    expect(await cluster.b.deps.chat.sweep()).toBe(0);
    const { message } = await doneOf(tabB, sent.assistantMessageId);
    expect(Date.now() - started).toBeGreaterThan(HEARTBEAT_TTL_MS);
    expect(message).toMatchObject({ status: 'complete', content: LONG });
  }, 60_000);
});

describe('CHAT-7 a node dies mid-stream', () => {
  it('[CHAT-7] the message becomes interrupted and the other node\'s tabs are told within 60 s', async () => {
    const env = productionEnv({ ...cluster.shared, NODE_ID: 'chat-doomed', DATABASE_URL: testDatabaseUrl() });
    const doomed = await startNodeProcess(env);
    try {
      const user = await signUp(doomed.url);
      const watcher = track(await connectReady(cluster.a.url, user.auth.accessToken));
      const speaker = track(await connectReady(doomed.url, user.auth.accessToken));
      cluster.upstream.enqueue({ kind: 'text', text: LONG, chunkSize: 2, delayMs: 200 });
      const sent = await speaker.call('chat:send', { content: 'a slow answer please' });
      await watcher.waitFor('chat:delta', (d) => d.messageId === sent.assistantMessageId && d.seq >= 1);
      await doomed.kill();
      const started = Date.now();
      const { message } = await watcher.waitFor('chat:done', (d) => d.message.id === sent.assistantMessageId, 60_000);
      expect(Date.now() - started).toBeLessThan(60_000);
      expect(message.status).toBe('interrupted');
      expect(message.content.length).toBeGreaterThan(0);
      expect((await watcher.call('conversation:list', {})).conversations[0]!.generating).toBe(false);
    } finally {
      await doomed.kill();
    }
  }, 90_000);
});

describe('graceful shutdown mid-stream', () => {
  it('[CHAT-7] SIGTERM ends the node\'s answers as interrupted, tells the other node\'s tabs at once, and exits 0', async () => {
    // No drain time: the answer ends at the signal (test/drain.test.ts covers the drain).
    const node = await startNodeProcess(productionEnv({ ...cluster.shared, NODE_ID: 'chat-leaving', DATABASE_URL: testDatabaseUrl(), DRAIN_TIMEOUT_MS: '0' }));
    try {
      const user = await signUp(node.url);
      const watcher = track(await connectReady(cluster.a.url, user.auth.accessToken));
      const speaker = track(await connectReady(node.url, user.auth.accessToken));
      cluster.upstream.enqueue({ kind: 'text', text: LONG, chunkSize: 2, delayMs: 200 });
      const sent = await speaker.call('chat:send', { content: 'keep talking while I deploy' });
      await watcher.waitFor('chat:delta', (d) => d.messageId === sent.assistantMessageId && d.seq >= 1);
      const started = Date.now();
      const exit = node.stop();
      const { message } = await watcher.waitFor('chat:done', (d) => d.message.id === sent.assistantMessageId, 10_000);
      expect(message.status).toBe('interrupted');
      expect(message.content.length).toBeGreaterThan(0);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(await exit).toBe(0);
    } finally {
      await node.kill();
    }
  }, 30_000);
});

describe('offline model end to end', () => {
  it('[CHAT-4] with no API key the embedded offline model turns "add task: buy milk" into a real task', async () => {
    const node = await startNodeProcess({
      ENVIRONMENT: 'test',
      PORT: '0',
      DATABASE_URL: testDatabaseUrl(),
      REDIS_URL: inject('redisUrl'),
      REDIS_PREFIX: uniquePrefix(),
      AUTO_MIGRATE: 'false',
      LOG_LEVEL: 'info',
    });
    try {
      const user = await signUp(node.url);
      const tab = track(await connectReady(node.url, user.auth.accessToken));
      const sent = await tab.call('chat:send', { content: 'add task: buy milk' });
      const { message } = await tab.waitFor('chat:done', (d) => d.message.id === sent.assistantMessageId, 15_000);
      expect(message.status).toBe('complete');
      expect(message.toolCalls[0]).toMatchObject({ name: 'create_task', status: 'ok' });
      const list = await tab.call('task:list', {});
      expect(list.tasks.map((t) => t.title)).toEqual(['buy milk']);
    } finally {
      await node.stop();
    }
  });
});
