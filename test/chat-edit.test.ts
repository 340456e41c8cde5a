/**
 * Edit, regenerate and continue, and every stop reason (PROTOCOL §6.2b,
 * CHAT-10, CHAT-13, CHAT-14), through the real Anthropic SDK against the
 * project's own scriptable endpoint, on two production-mode nodes.
 */
import { describe, expect, it } from 'vitest';
import { productionEnv, uniquePrefix } from './support/env.js';
import { startTestApp } from './support/app.js';
import { signUp } from './support/users.js';
import { useChatCluster, doneOf } from './support/chat-cluster.js';
import { connectReady, type Tab } from './support/sockets.js';
import type { RecordedRequest } from '../dev/offline-model/server.js';
import { LONG_STORY } from '../dev/offline-model/replies.js';
import { ErrorCode } from '../shared/errors.js';
import { MAX_OUTPUT_TOKENS, MAX_TOOL_ROUNDS } from '../server/features/chat/assistant.js';
import type { Message } from '../shared/schemas/chat.js';

const cluster = useChatCluster('edit', { UPSTREAM_TIMEOUT_SECONDS: '2' });
const { track } = cluster;
const twoTabs = () => cluster.twoTabs();

const SLOW = Array.from({ length: 40 }, (_, i) => `slow${i}`).join(' ') + '.';


const deltasOf = (tab: Tab, messageId: string) => tab.received.filter((r) => r.event === 'chat:delta' && r.data.messageId === messageId).map((r) => r.data);
const indexOf = (tab: Tab, event: string, match: (d: any) => boolean) => tab.received.findIndex((r) => r.event === event && match(r.data));
const requestsWith = (text: string) => cluster.upstream.requests.filter((r) => JSON.stringify(r.body).includes(text));
const bodyOf = (r: RecordedRequest) => r.body as { messages: { role: string; content: unknown }[]; tools: unknown[]; system: unknown };
const rows = (conversationId: string) =>
  cluster.a.deps.orm.em
    .getConnection()
    .execute('select id, role, content, status, stop_reason, usage from messages where conversation_id = ? order by created_at, id', [conversationId]);

/** Sends `content` (in a new conversation unless given one) and waits for its answer, scripted as `reply`. */
async function exchange(tab: Tab, content: string, reply: string, conversationId?: string) {
  cluster.upstream.enqueue({ kind: 'text', text: reply });
  const sent = await tab.call('chat:send', conversationId ? { conversationId, content } : { content });
  const { message } = await doneOf(tab, sent.assistantMessageId);
  return { ...sent, answer: message };
}

describe('CHAT-10 edit and regenerate', () => {
  it('[CHAT-10] an edit rewrites the message, removes all after it, and every tab gets chat:truncated then the new answer; a tab joining mid-stream sees the same', async () => {
    const { user, tabA, tabB } = await twoTabs();
    const one = await exchange(tabA, 'first question', 'First answer.');
    const two = await exchange(tabA, 'second question', 'Second answer.', one.conversationId);

    cluster.upstream.enqueue({ kind: 'text', text: SLOW, chunkSize: 5, delayMs: 15 });
    const edited = await tabA.call('chat:edit', { messageId: one.userMessage.id, content: 'first question, reworded' });
    expect(edited.conversationId).toBe(one.conversationId);
    expect(edited.userMessage).toMatchObject({ id: one.userMessage.id, role: 'user', content: 'first question, reworded', status: 'complete', stopReason: null });
    const id = edited.assistantMessageId;
    expect([one.assistantMessageId, two.assistantMessageId]).not.toContain(id);

    await tabB.waitFor('chat:delta', (d) => d.messageId === id && d.seq >= 3);
    const late = track(await connectReady(cluster.b.url, user.auth.accessToken));
    const midway = await late.call('chat:history', { conversationId: one.conversationId });
    expect(midway.messages.map((m) => [m.id, m.content.slice(0, 24), m.status])).toEqual([
      [one.userMessage.id, 'first question, reworded', 'complete'],
      [id, expect.any(String), 'streaming'],
    ]);
    const streaming = midway.messages[1]!;
    const { message } = await doneOf(late, id);
    expect(message).toMatchObject({ status: 'complete', content: SLOW, stopReason: 'end_turn' });
    expect(streaming.content + deltasOf(late, id).filter((d) => d.seq > streaming.lastSeq!).map((d) => d.text).join('')).toBe(SLOW);

    for (const tab of [tabA, tabB]) {
      await doneOf(tab, id);
      const truncatedAt = indexOf(tab, 'chat:truncated', (d) => d.conversationId === one.conversationId);
      expect(tab.received[truncatedAt]!.data).toEqual({ conversationId: one.conversationId, afterMessageId: one.userMessage.id });
      const editedAt = indexOf(tab, 'chat:message', (d) => d.message.id === one.userMessage.id && d.message.content === 'first question, reworded');
      const startedAt = indexOf(tab, 'chat:message', (d) => d.message.id === id && d.message.status === 'streaming');
      const firstDeltaAt = indexOf(tab, 'chat:delta', (d) => d.messageId === id);
      expect(truncatedAt).toBeGreaterThan(-1);
      expect(truncatedAt).toBeLessThan(editedAt);
      expect(editedAt).toBeLessThan(startedAt);
      expect(startedAt).toBeLessThan(firstDeltaAt);
      expect(deltasOf(tab, id).map((d) => d.seq)).toEqual(deltasOf(tab, id).map((_, i) => i));
    }
    // In PostgreSQL: the edited message and its new answer, nothing else.
    expect(await rows(one.conversationId)).toEqual([
      expect.objectContaining({ id: one.userMessage.id, content: 'first question, reworded', stop_reason: null }),
      expect.objectContaining({ id, role: 'assistant', content: SLOW, status: 'complete', stop_reason: 'end_turn' }),
    ]);
    // Claude was asked the edited question alone.
    expect(bodyOf(requestsWith('first question, reworded').at(-1)!).messages).toEqual([{ role: 'user', content: 'first question, reworded' }]);
  });

  it('[CHAT-10] regenerate replaces the last answer only; refused for another answer, a user message, another user\'s message, and a replaced one', async () => {
    const { tabA, tabB } = await twoTabs();
    const one = await exchange(tabA, 'what is two plus two', 'Four.');
    const two = await exchange(tabA, 'and three plus three', 'Seven.', one.conversationId);

    cluster.upstream.enqueue({ kind: 'text', text: 'Six.' });
    const again = await tabB.call('chat:regenerate', { messageId: two.assistantMessageId });
    expect(again.conversationId).toBe(one.conversationId);
    const { message } = await doneOf(tabA, again.assistantMessageId);
    expect(message).toMatchObject({ content: 'Six.', status: 'complete', stopReason: 'end_turn' });
    for (const tab of [tabA, tabB]) {
      expect((await tab.waitFor('chat:truncated', (d) => d.conversationId === one.conversationId)).afterMessageId).toBe(two.userMessage.id);
    }
    const history = await tabA.call('chat:history', { conversationId: one.conversationId });
    expect(history.messages.map((m) => m.content)).toEqual(['what is two plus two', 'Four.', 'and three plus three', 'Six.']);
    expect(bodyOf(cluster.upstream.requests.at(-1)!).messages).toEqual([
      { role: 'user', content: 'what is two plus two' },
      { role: 'assistant', content: 'Four.' },
      { role: 'user', content: 'and three plus three' },
    ]);

    const refusals = [
      [await tabA.request('chat:regenerate', { messageId: one.assistantMessageId }), ErrorCode.CONFLICT],
      [await tabA.request('chat:continue', { messageId: one.assistantMessageId }), ErrorCode.CONFLICT],
      [await tabA.request('chat:regenerate', { messageId: two.userMessage.id }), ErrorCode.VALIDATION],
      [await tabA.request('chat:edit', { messageId: again.assistantMessageId, content: 'my words now' }), ErrorCode.VALIDATION],
      // the answer this regenerate replaced, from a tab that had not heard
      [await tabB.request('chat:regenerate', { messageId: two.assistantMessageId }), ErrorCode.CONFLICT],
      [await tabB.request('chat:edit', { messageId: '00000000-0000-4000-8000-000000000000', content: 'nobody\'s' }), ErrorCode.NOT_FOUND],
    ] as const;
    for (const [res, code] of refusals) expect(res).toMatchObject({ ok: false, error: { code } });
    expect((refusals[2][0] as { error: { issues: unknown[] } }).error.issues).toEqual([{ path: 'messageId', message: expect.any(String) }]);

    const stranger = track(await connectReady(cluster.b.url, (await signUp(cluster.b.url)).auth.accessToken));
    for (const res of [
      await stranger.request('chat:edit', { messageId: one.userMessage.id, content: 'hijacked' }),
      await stranger.request('chat:regenerate', { messageId: again.assistantMessageId }),
      await stranger.request('chat:continue', { messageId: again.assistantMessageId }),
      // another user's replaced message is still not theirs
      await stranger.request('chat:regenerate', { messageId: two.assistantMessageId }),
    ]) {
      expect(res).toMatchObject({ ok: false, error: { code: ErrorCode.NOT_FOUND } });
    }
    expect((await tabA.call('chat:history', { conversationId: one.conversationId })).messages).toEqual(history.messages);
  });

  it('[CHAT-10] edit, regenerate and continue are CONFLICT while an answer is generated in the conversation, which stays as it was', async () => {
    const { tabA, tabB } = await twoTabs();
    const one = await exchange(tabA, 'hello there', 'Hi.');
    cluster.upstream.enqueue({ kind: 'text', text: SLOW, delayMs: 20 });
    const two = await tabA.call('chat:send', { conversationId: one.conversationId, content: 'talk for a while' });
    await tabB.waitFor('chat:delta', (d) => d.messageId === two.assistantMessageId);
    for (const res of [
      await tabB.request('chat:edit', { messageId: one.userMessage.id, content: 'changed my mind' }),
      await tabB.request('chat:edit', { messageId: two.userMessage.id, content: 'changed my mind' }),
      await tabB.request('chat:regenerate', { messageId: two.assistantMessageId }),
      await tabB.request('chat:regenerate', { messageId: one.assistantMessageId }),
      await tabB.request('chat:continue', { messageId: two.assistantMessageId }),
    ]) {
      expect(res).toMatchObject({ ok: false, error: { code: ErrorCode.CONFLICT } });
    }
    const { message } = await doneOf(tabA, two.assistantMessageId);
    expect(message).toMatchObject({ status: 'complete', content: SLOW });
    expect(tabA.received.filter((r) => r.event === 'chat:truncated')).toEqual([]);
    expect((await rows(one.conversationId)).map((r) => r.content)).toEqual(['hello there', 'Hi.', 'talk for a while', SLOW]);
  });

  it('[CHAT-10] a regenerate racing an edit from another tab: one wins, the other is CONFLICT, and the tabs agree', async () => {
    const { tabA, tabB } = await twoTabs();
    const winners: string[] = [];
    for (let round = 0; round < 4; round++) {
      const one = await exchange(tabA, `question ${round}`, 'An answer.');
      cluster.upstream.setScript(() => ({ kind: 'text', text: 'A fresh answer, slowly.', chunkSize: 4, delayMs: 10 }));
      const [edit, regenerate] = await Promise.all([
        tabA.request('chat:edit', { messageId: one.userMessage.id, content: `question ${round}, edited` }),
        tabB.request('chat:regenerate', { messageId: one.assistantMessageId }),
      ]);
      expect([edit.ok, regenerate.ok].filter(Boolean)).toHaveLength(1);
      const [won, lost] = edit.ok ? [edit, regenerate] : [regenerate, edit];
      expect(lost).toMatchObject({ ok: false, error: { code: ErrorCode.CONFLICT } });
      winners.push(edit.ok ? 'edit' : 'regenerate');
      const answerId = (won as { data: { assistantMessageId: string } }).data.assistantMessageId;
      await doneOf(tabA, answerId);
      await doneOf(tabB, answerId);
      const [historyA, historyB] = await Promise.all([
        tabA.call('chat:history', { conversationId: one.conversationId }),
        tabB.call('chat:history', { conversationId: one.conversationId }),
      ]);
      expect(historyA).toEqual(historyB);
      expect(historyA.messages.map((m) => [m.role, m.content])).toEqual([
        ['user', edit.ok ? `question ${round}, edited` : `question ${round}`],
        ['assistant', 'A fresh answer, slowly.'],
      ]);
      for (const tab of [tabA, tabB]) {
        expect(tab.received.filter((r) => r.event === 'chat:truncated' && r.data.conversationId === one.conversationId)).toHaveLength(1);
      }
      cluster.upstream.setScript(undefined);
    }
    expect(winners).toHaveLength(4);
    // Either order, decided: the edit first leaves the regenerate its answer gone, the regenerate first leaves the edit an answer generating.
    const one = await exchange(tabA, 'in order', 'An answer.');
    cluster.upstream.enqueue({ kind: 'text', text: 'Edited answer.' });
    const edit = await tabA.call('chat:edit', { messageId: one.userMessage.id, content: 'in order, edited' });
    await doneOf(tabB, edit.assistantMessageId);
    expect(await tabB.request('chat:regenerate', { messageId: one.assistantMessageId })).toMatchObject({ ok: false, error: { code: ErrorCode.CONFLICT, message: 'This message was replaced in another tab' } });
    cluster.upstream.enqueue({ kind: 'text', text: SLOW, delayMs: 10 });
    const again = await tabB.call('chat:regenerate', { messageId: edit.assistantMessageId });
    expect(await tabA.request('chat:edit', { messageId: one.userMessage.id, content: 'too late' })).toMatchObject({ ok: false, error: { code: ErrorCode.CONFLICT } });
    await doneOf(tabA, again.assistantMessageId);
  });

  it('[RT-6] chat:edit, chat:regenerate and chat:continue count against CHAT_MESSAGES_PER_MINUTE like chat:send', async () => {
    await using node = await startTestApp(productionEnv({ ...cluster.shared, REDIS_PREFIX: uniquePrefix(), CHAT_MESSAGES_PER_MINUTE: '3' }));
    const user = await signUp(node.url);
    const tab = track(await connectReady(node.url, user.auth.accessToken));
    const first = await exchange(tab, 'one', 'Uno.');
    cluster.upstream.enqueue({ kind: 'text', text: 'Ein.' });
    const edited = await tab.call('chat:edit', { messageId: first.userMessage.id, content: 'one again' });
    await doneOf(tab, edited.assistantMessageId);
    cluster.upstream.enqueue({ kind: 'text', text: 'Un.' });
    const again = await tab.call('chat:regenerate', { messageId: edited.assistantMessageId });
    await doneOf(tab, again.assistantMessageId);
    for (const res of [
      await tab.request('chat:regenerate', { messageId: again.assistantMessageId }),
      await tab.request('chat:edit', { messageId: first.userMessage.id, content: 'once more' }),
      await tab.request('chat:continue', { messageId: again.assistantMessageId }),
    ]) {
      expect(res).toMatchObject({ ok: false, error: { code: ErrorCode.RATE_LIMITED } });
    }
    expect((await tab.call('chat:history', { conversationId: first.conversationId })).messages.map((m) => m.content)).toEqual(['one again', 'Un.']);
  });
});

describe('CHAT-13 stop reasons', () => {
  it('[CHAT-13] pause_turn is continued by the server: the paused turn goes back as it came, with no user message, into the same answer', async () => {
    const { tabA, tabB } = await twoTabs();
    cluster.upstream.enqueue({ kind: 'text', text: 'Part one.', stopReason: 'pause_turn' }, { kind: 'text', text: ' Part two.' });
    const sent = await tabA.call('chat:send', { content: 'a long turn please' });
    const { message } = await doneOf(tabB, sent.assistantMessageId);
    expect(message).toMatchObject({ status: 'complete', content: 'Part one. Part two.', stopReason: 'end_turn' });
    const deltas = deltasOf(tabB, sent.assistantMessageId);
    expect(deltas.map((d) => d.seq)).toEqual(deltas.map((_, i) => i));
    const [paused, resumed] = requestsWith('a long turn please').slice(-2).map(bodyOf);
    expect(resumed!.messages).toEqual([...paused!.messages, { role: 'assistant', content: [{ type: 'text', text: 'Part one.' }] }]);
    expect(resumed!.tools).toEqual(paused!.tools);
    expect(resumed!.system).toEqual(paused!.system);
    expect((await rows(sent.conversationId))[1]).toMatchObject({ stop_reason: 'end_turn' });
  });

  it('[CHAT-13] max_tokens ends the answer complete; chat:continue from another tab appends to that message, its seq going on', async () => {
    const { user, tabA, tabB } = await twoTabs();
    // The offline model's own long story: longer than MAX_OUTPUT_TOKENS.
    const sent = await tabA.call('chat:send', { content: 'Write a long story' });
    const { message: cut } = await doneOf(tabA, sent.assistantMessageId);
    expect(cut).toMatchObject({ status: 'complete', stopReason: 'max_tokens', content: LONG_STORY.slice(0, MAX_OUTPUT_TOKENS * 4) });
    // The tools and the stable system prompt come from the prompt cache, or go to it (CHAT-12).
    expect(cut.usage!.outputTokens).toBe(MAX_OUTPUT_TOKENS);
    expect(cut.usage!.cacheReadTokens + cut.usage!.cacheCreationTokens).toBeGreaterThan(0);

    const going = await tabB.call('chat:continue', { messageId: cut.id });
    expect(going).toEqual({ conversationId: sent.conversationId, assistantMessageId: cut.id });
    // (the first chat:message of this id started it empty)
    const restarted = await tabA.waitFor('chat:message', (d) => d.message.id === cut.id && d.message.status === 'streaming' && d.message.content !== '');
    expect(restarted.message).toMatchObject({ content: cut.content, lastSeq: cut.lastSeq, stopReason: null });
    const late = track(await connectReady(cluster.a.url, user.auth.accessToken));
    const midway = (await late.call('chat:history', { conversationId: sent.conversationId })).messages[1]!;
    expect(midway.id).toBe(cut.id);
    expect(midway.content.startsWith(cut.content)).toBe(true);
    expect(midway.lastSeq).toBeGreaterThanOrEqual(cut.lastSeq!);

    const continued = (tab: Tab) => tab.waitFor('chat:done', (d) => d.message.id === cut.id && d.message.stopReason !== 'max_tokens', 15_000) as Promise<{ message: Message }>;
    const { message } = await continued(tabA);
    await continued(tabB);
    expect(message).toMatchObject({ status: 'complete', stopReason: 'end_turn', content: LONG_STORY });
    expect(message.usage!.outputTokens).toBeGreaterThan(MAX_OUTPUT_TOKENS);
    for (const tab of [tabA, tabB]) {
      const deltas = deltasOf(tab, cut.id);
      expect(deltas.map((d) => d.seq)).toEqual(deltas.map((_, i) => i));
      expect(deltas.map((d) => d.text).join('')).toBe(LONG_STORY);
      expect(message.lastSeq).toBe(deltas.length - 1);
    }
    const lateDeltas = deltasOf(late, cut.id).filter((d) => d.seq > midway.lastSeq!);
    expect(midway.content + lateDeltas.map((d) => d.text).join('')).toBe(LONG_STORY);
    // Claude was sent the cut-off answer to go on from.
    expect(bodyOf(cluster.upstream.requests.at(-1)!).messages.at(-1)).toEqual({ role: 'assistant', content: cut.content });
    expect(await tabA.request('chat:continue', { messageId: cut.id })).toMatchObject({ ok: false, error: { code: ErrorCode.CONFLICT } });
    expect(await rows(sent.conversationId)).toHaveLength(2);
  });

  it('[CHAT-13] a refusal ends the answer complete with stopReason refusal, and the next turn works without the refused one', async () => {
    const { tabA, tabB } = await twoTabs();
    const one = await exchange(tabA, 'hello', 'Hi there.');
    cluster.upstream.enqueue({ kind: 'text', text: 'I will not', stopReason: 'refusal' });
    const refused = await tabA.call('chat:send', { conversationId: one.conversationId, content: 'something refused' });
    const { message } = await doneOf(tabB, refused.assistantMessageId);
    expect(message).toMatchObject({ status: 'complete', stopReason: 'refusal', content: 'I will not', error: null });
    const next = await exchange(tabB, 'something fine', 'Gladly.', one.conversationId);
    expect(next.answer).toMatchObject({ status: 'complete', content: 'Gladly.', stopReason: 'end_turn' });
    expect(bodyOf(cluster.upstream.requests.at(-1)!).messages).toEqual([
      { role: 'user', content: 'hello' },
      { role: 'assistant', content: 'Hi there.' },
      { role: 'user', content: 'something fine' },
    ]);
    // The refused turn stays in the conversation the user sees.
    expect((await tabA.call('chat:history', { conversationId: one.conversationId })).messages.map((m) => m.stopReason)).toEqual([
      null,
      'end_turn',
      null,
      'refusal',
      null,
      'end_turn',
    ]);
  });

  it('[CHAT-13] stop_sequence and tool_use are recorded as they came', async () => {
    const { tabA } = await twoTabs();
    cluster.upstream.enqueue({ kind: 'text', text: 'Up to the stop.', stopReason: 'stop_sequence' });
    const stopped = await exchange(tabA, 'stop somewhere', 'unused');
    expect(stopped.answer).toMatchObject({ stopReason: 'stop_sequence', status: 'complete', content: 'Up to the stop.' });
    cluster.upstream.setScript(() => ({ kind: 'tool_use', name: 'list_tasks', input: {}, text: 'Looking.' }));
    const sent = await tabA.call('chat:send', { content: 'keep looking' });
    const { message } = await doneOf(tabA, sent.assistantMessageId);
    expect(message).toMatchObject({ status: 'complete', stopReason: 'tool_use' });
    expect(message.toolCalls).toHaveLength(MAX_TOOL_ROUNDS);
  });
});

describe('CHAT-14 an over-long context', () => {
  /** A conversation of `turns` long exchanges, then the total input tokens of the request of its last answer. */
  async function longConversation(tab: Tab, turns: number) {
    let conversationId: string | undefined;
    let last!: Awaited<ReturnType<typeof exchange>>;
    for (let i = 0; i < turns; i++) {
      last = await exchange(tab, `question ${i} ${'q'.repeat(3_000)}`, `answer ${i} ${'a'.repeat(3_000)}`, conversationId);
      conversationId = last.conversationId;
    }
    const usage = last.answer.usage!;
    return { ...last, conversationId: conversationId!, inputTokens: usage.inputTokens + usage.cacheReadTokens + usage.cacheCreationTokens };
  }

  it('[CHAT-14] a 400 "prompt is too long" is retried once with the oldest turns trimmed harder, and the answer completes', async () => {
    const { tabA, tabB } = await twoTabs();
    const last = await longConversation(tabA, 6);
    // The same request again, in a model whose window it now overflows by a little.
    const window = last.inputTokens - 100;
    cluster.upstream.setScript(() => ({ kind: 'text', text: 'Fits now.', contextWindow: window }));
    const before = cluster.upstream.requests.length;
    const again = await tabB.call('chat:regenerate', { messageId: last.assistantMessageId });
    const { message } = await doneOf(tabA, again.assistantMessageId);
    expect(message).toMatchObject({ status: 'complete', content: 'Fits now.', stopReason: 'end_turn', error: null });
    const [tooLong, retry] = cluster.upstream.requests.slice(before);
    expect(cluster.upstream.requests.length - before).toBe(2);
    expect(tooLong!.completed).toBe(true);
    const full = bodyOf(tooLong!).messages;
    const trimmed = bodyOf(retry!).messages;
    expect(full).toHaveLength(11);
    expect(trimmed.length).toBeLessThan(full.length);
    expect(trimmed.length).toBeGreaterThan(0);
    expect(trimmed).toEqual(full.slice(full.length - trimmed.length));
    expect(trimmed[0]!.role).toBe('user');
  });

  it('[CHAT-14] model_context_window_exceeded is retried once with less history, going on from the text so far', async () => {
    const { tabA, tabB } = await twoTabs();
    const last = await longConversation(tabA, 6);
    const text = 'abcdefghij'.repeat(30);
    // The request fits the window, its answer does not: 20 tokens of it do.
    const window = last.inputTokens + 20;
    cluster.upstream.setScript(() => ({ kind: 'text', text, chunkSize: 10, contextWindow: window }));
    const before = cluster.upstream.requests.length;
    const again = await tabB.call('chat:regenerate', { messageId: last.assistantMessageId });
    const { message } = await doneOf(tabA, again.assistantMessageId);
    expect(message).toMatchObject({ status: 'complete', content: text, stopReason: 'end_turn' });
    const deltas = deltasOf(tabA, again.assistantMessageId);
    expect(deltas.map((d) => d.seq)).toEqual(deltas.map((_, i) => i));
    expect(deltas.map((d) => d.text).join('')).toBe(text);
    const [exceeded, retry] = cluster.upstream.requests.slice(before).map(bodyOf);
    expect(cluster.upstream.requests.length - before).toBe(2);
    expect(retry!.messages.at(-1)).toEqual({ role: 'assistant', content: [{ type: 'text', text: text.slice(0, 80) }] });
    expect(retry!.messages.length).toBeLessThan(exceeded!.messages.length);
  });

  it('[CHAT-14] an answer still too long after the one retry ends as error/UPSTREAM, keeping its text', async () => {
    const { tabA } = await twoTabs();
    const first = await exchange(tabA, 'a short conversation', 'Short.');
    const usage = first.answer.usage!;
    // One message: the retry cannot shrink the history, and the text so far makes it longer still.
    const window = usage.inputTokens + usage.cacheReadTokens + usage.cacheCreationTokens + 5;
    cluster.upstream.setScript(() => ({ kind: 'text', text: 'x'.repeat(400), contextWindow: window }));
    const before = cluster.upstream.requests.length;
    const again = await tabA.call('chat:regenerate', { messageId: first.assistantMessageId });
    const { message } = await doneOf(tabA, again.assistantMessageId);
    expect(message).toMatchObject({ status: 'error', content: 'x'.repeat(20), error: { code: ErrorCode.UPSTREAM, message: expect.stringMatching(/too long/) } });
    expect(cluster.upstream.requests.length - before).toBe(2);

    // A prompt over the window from the first request on: two tries, then the error.
    cluster.upstream.setScript(() => ({ kind: 'text', text: 'never', contextWindow: 10 }));
    const count = cluster.upstream.requests.length;
    const last = await tabA.call('chat:regenerate', { messageId: again.assistantMessageId });
    const { message: failed } = await doneOf(tabA, last.assistantMessageId);
    expect(failed).toMatchObject({ status: 'error', content: '', stopReason: null, error: { code: ErrorCode.UPSTREAM, message: expect.stringMatching(/too long/) } });
    expect(cluster.upstream.requests.length - count).toBe(2);
  });
});
