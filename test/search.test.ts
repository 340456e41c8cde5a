/**
 * Search (PROTOCOL §6.2b, CHAT-11) on two production-mode nodes: ranking, «…» snippets, kinds, limit, the trash,
 * only the user's own data, any query text safe, the assistant's `search_history` tool through the offline model,
 * and the plan PostgreSQL runs it with.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { productionEnv, randomSecret, uniquePrefix } from './support/env.js';
import { useTwoNodes } from './support/app.js';
import { signUp } from './support/users.js';
import { connectReady, type Tab } from './support/sockets.js';
import { createAnthropicCompatibleServer, type AnthropicCompatibleServer } from '../dev/offline-model/server.js';
import { runTool } from '../server/features/chat/tools.js';
import { createSearchRepository } from '../server/features/search/search.repository.js';
import { ErrorCode } from '../shared/errors.js';
import type { Message, SearchResult } from '../shared/schemas/chat.js';

let upstream: AnthropicCompatibleServer;
beforeAll(async () => {
  upstream = await createAnthropicCompatibleServer({ deltaDelayMs: 0 });
});
afterAll(async () => {
  await upstream?.close();
});
const shared = { REDIS_PREFIX: uniquePrefix(), SECRET_KEY: randomSecret(), SOCKET_EVENTS_PER_MINUTE: '100000', RATE_LIMIT_PER_MINUTE: '10000' };
const cluster = useTwoNodes(() => productionEnv({ ...shared, ANTHROPIC_BASE_URL: upstream.url, ANTHROPIC_MODEL: 'claude-test-model' }));

/** A user with one tab on each node. */
async function userWithTabs() {
  const user = await signUp(cluster.a.url);
  const onA = cluster.track(await connectReady(cluster.a.url, user.auth.accessToken));
  const onB = cluster.track(await connectReady(cluster.b.url, user.auth.accessToken));
  return { user, onA, onB };
}

/** Sends `content` and waits for the finished answer. */
async function ask(tab: Tab, content: string, conversationId?: string): Promise<{ conversationId: string; userMessage: Message; answer: Message }> {
  const sent = await tab.call('chat:send', conversationId ? { content, conversationId } : { content });
  const { message } = await tab.waitFor('chat:done', (d) => d.message.id === sent.assistantMessageId, 15_000);
  return { conversationId: sent.conversationId, userMessage: sent.userMessage, answer: message };
}

const search = async (tab: Tab, payload: { query: string; kinds?: SearchResult['kind'][]; limit?: number }) => (await tab.call('search', payload)).results;
const idsOf = (results: SearchResult[]) => results.map((r) => r.id);

describe('CHAT-11 search', () => {
  it('[CHAT-11] ranks a title above a description, ties by recency, marks the words «…», on either node', async () => {
    const { onA, onB } = await userWithTabs();
    const described = (await onA.call('task:create', { title: 'Garden work', description: 'Plant the tulip bulbs along the fence before the frost comes.' })).task;
    const titled = (await onA.call('task:create', { title: 'Buy tulip bulbs' })).task;
    await onA.call('task:create', { title: 'Call the plumber' });
    const older = (await onA.call('task:create', { title: 'Water the ferns' })).task;
    const newer = (await onA.call('task:create', { title: 'Water the ferns' })).task;

    const results = await search(onB, { query: 'tulip' });
    expect(idsOf(results)).toEqual([titled.id, described.id]);
    expect(results[0]).toEqual({ kind: 'task', id: titled.id, conversationId: null, title: 'Buy tulip bulbs', snippet: 'Buy «tulip» bulbs', at: titled.updatedAt, rank: expect.any(Number) });
    expect(results[0]!.rank).toBeGreaterThan(results[1]!.rank);
    expect(results[1]).toMatchObject({ title: 'Garden work', snippet: expect.stringContaining('the «tulip» bulbs') });
    expect(results[1]!.snippet).not.toContain('Garden work');
    // Both words must be there; a phrase keeps their order; a word can be excluded.
    expect(idsOf(await search(onA, { query: 'tulip fence' }))).toEqual([described.id]);
    expect(idsOf(await search(onA, { query: '"tulip bulbs"' }))).toEqual([titled.id, described.id]);
    expect(idsOf(await search(onA, { query: '"bulbs tulip"' }))).toEqual([]);
    expect(idsOf(await search(onA, { query: 'tulip -fence' }))).toEqual([titled.id]);
    const either = idsOf(await search(onA, { query: 'plumber or fence' }));
    expect(either).toHaveLength(2);
    expect(either).toContain(described.id);
    // Equal ranks: the most recent change first.
    expect(idsOf(await search(onA, { query: 'ferns' }))).toEqual([newer.id, older.id]);
    await onA.call('task:update', { id: older.id, patch: { intensity: 2 } });
    expect(idsOf(await search(onA, { query: 'ferns' }))).toEqual([older.id, newer.id]);
  });

  it('[CHAT-11] the last word matches as a prefix from three letters; case and accents of the text are kept as typed', async () => {
    const { onA } = await userWithTabs();
    const task = (await onA.call('task:create', { title: 'Réserver le Théâtre du Châtelet' })).task;
    expect(idsOf(await search(onA, { query: 'théât' }))).toEqual([task.id]);
    expect(idsOf(await search(onA, { query: 'THÉÂTRE' }))).toEqual([task.id]);
    expect((await search(onA, { query: 'châtelet' }))[0]!.snippet).toBe('Réserver le Théâtre du «Châtelet»');
    // A prefix only for the last word, and only from three letters: `th` alone would match half of every text.
    expect(await search(onA, { query: 'th' })).toEqual([]);
    expect(await search(onA, { query: 'théât réserver' })).toEqual([]);
    // 'simple' does not fold accents (no unaccent extension): the accent is part of the word.
    expect(await search(onA, { query: 'theatre' })).toEqual([]);
  });

  it('[CHAT-11] messages and conversation titles are found, each with its conversation; kinds and limit choose', async () => {
    const { onA, onB } = await userWithTabs();
    const first = await ask(onA, 'Which marigold varieties grow well in shade?');
    const second = await ask(onA, 'The marigold seeds arrive on Friday', first.conversationId);
    const task = (await onA.call('task:create', { title: 'Sow marigold seeds' })).task;

    const all = await search(onB, { query: 'marigold' });
    const kinds = all.map((r) => `${r.kind}:${r.id}`);
    // The user's two messages, the offline model's two answers (they quote the question), the title, the task.
    expect(kinds).toEqual(
      expect.arrayContaining([
        `message:${first.userMessage.id}`,
        `message:${second.userMessage.id}`,
        `message:${first.answer.id}`,
        `message:${second.answer.id}`,
        `conversation:${first.conversationId}`,
        `task:${task.id}`,
      ]),
    );
    expect(all).toHaveLength(6);
    for (const r of all) expect(r.snippet).toContain('«marigold»');
    const message = all.find((r) => r.id === second.userMessage.id)!;
    expect(message).toEqual({
      kind: 'message',
      id: second.userMessage.id,
      conversationId: first.conversationId,
      title: 'Which marigold varieties grow well in shade?',
      snippet: 'The «marigold» seeds arrive on Friday',
      at: second.userMessage.createdAt,
      rank: expect.any(Number),
    });
    expect(all.find((r) => r.kind === 'conversation')).toMatchObject({ id: first.conversationId, conversationId: first.conversationId });
    // Sorted by rank, then recency.
    for (let i = 1; i < all.length; i++) {
      const [p, r] = [all[i - 1]!, all[i]!];
      expect(p.rank > r.rank || (p.rank === r.rank && p.at >= r.at)).toBe(true);
    }

    expect((await search(onA, { query: 'marigold', kinds: ['task'] })).map((r) => r.id)).toEqual([task.id]);
    expect(new Set((await search(onA, { query: 'marigold', kinds: ['message', 'conversation'] })).map((r) => r.kind))).toEqual(new Set(['message', 'conversation']));
    expect((await search(onA, { query: 'marigold', kinds: ['conversation'] })).map((r) => r.id)).toEqual([first.conversationId]);
    expect(await search(onA, { query: 'marigold', limit: 2 })).toEqual(all.slice(0, 2));
    expect(await search(onA, { query: 'marigold', limit: 1 })).toEqual(all.slice(0, 1));

    // A renamed conversation is found by its new title only; a deleted one, and its messages, no more.
    await onA.call('conversation:rename', { id: first.conversationId, title: 'Shade flowers' });
    expect((await search(onA, { query: 'shade', kinds: ['conversation'] })).map((r) => r.id)).toEqual([first.conversationId]);
    expect(await search(onA, { query: 'marigold', kinds: ['conversation'] })).toEqual([]);
    expect((await search(onA, { query: 'seeds', kinds: ['message'] }))[0]).toMatchObject({ title: 'Shade flowers' });
    await onA.call('conversation:delete', { id: first.conversationId });
    expect(idsOf(await search(onA, { query: 'marigold' }))).toEqual([task.id]);
  });

  it('[CHAT-11] the limit defaults to 20 and applies across kinds', async () => {
    const { onA } = await userWithTabs();
    for (let i = 0; i < 23; i++) await onA.call('task:create', { title: `Plan sprint ${i}` });
    expect(await search(onA, { query: 'sprint' })).toHaveLength(20);
    expect(await search(onA, { query: 'sprint', limit: 50 })).toHaveLength(23);
  });

  it('[CHAT-11] trashed tasks are found, with their status for the assistant; purged ones are gone', async () => {
    const { user, onA } = await userWithTabs();
    const task = (await onA.call('task:create', { title: 'Renew the passport' })).task;
    const deleted = (await onA.call('task:delete', { id: task.id })).task;
    expect(await search(onA, { query: 'passport' })).toEqual([expect.objectContaining({ id: task.id, at: deleted.updatedAt })]);
    const hits = await cluster.a.deps.search.hits(user.auth.user.id, { query: 'passport' });
    expect(hits.map((h) => h.taskStatus)).toEqual(['deleted']);
    await onA.call('task:purge', { id: task.id });
    expect(await search(onA, { query: 'passport' })).toEqual([]);
  });

  it("[CHAT-11] another user's data never appears, even with the very same words", async () => {
    const alice = await userWithTabs();
    const bob = await userWithTabs();
    const mine: string[] = [];
    const theirs: string[] = [];
    for (const [who, ids] of [[alice, mine], [bob, theirs]] as const) {
      ids.push((await who.onA.call('task:create', { title: 'Quarterly budget review', description: 'budget spreadsheet' })).task.id);
      const chat = await ask(who.onA, 'Draft the quarterly budget email');
      ids.push(chat.conversationId, chat.userMessage.id, chat.answer.id);
    }
    for (const [who, own, other] of [[alice, mine, theirs], [bob, theirs, mine]] as const) {
      for (const query of ['budget', 'quarterly budget', '"quarterly budget"', 'budget or email', 'budg']) {
        const results = await search(who.onB, { query, limit: 50 });
        expect(idsOf(results).every((id) => own.includes(id)), query).toBe(true);
        expect(JSON.stringify(results)).not.toMatch(new RegExp(other.join('|')));
      }
      expect(new Set(idsOf(await search(who.onA, { query: 'budget', limit: 50 })))).toEqual(new Set(own));
    }
  });

  it('[CHAT-11] any query text is safe: operators, quotes, unicode answer results or none, never an error; blank and oversize are VALIDATION', async () => {
    const { onA } = await userWithTabs();
    await onA.call('task:create', { title: "Fix the parser's quote handling", description: 'a & b | c <-> d :* (e) !f \\g' });
    const logsFrom = cluster.a.logs.records().length;
    const hostile = [
      '"unclosed',
      'a & | ! ( ) :* <->',
      "'",
      "''''",
      '\\',
      '\\\\\\',
      '&&&|||!!!',
      ':*',
      '<->',
      '<2>',
      'foo:*A',
      "parser's",
      '-',
      '- - -',
      'or',
      'or or or',
      '"" "" ""',
      '((((((((',
      ')))',
      '🎉🎉',
      'ünïcødé 東京 Привет مرحبا',
      'a'.repeat(500),
      '&|!()<>:*\'"\\-'.repeat(500 / 13 | 0).slice(0, 500),
      Array.from({ length: 250 }, (_, i) => (i % 2 ? '|' : '!')).join(''),
      Array.from({ length: 100 }, () => 'x').join(' & '),
      '\u200b\u00a0\u2028',
      '%_%',
      "'; drop table tasks; --",
    ];
    for (const query of hostile) {
      const ack = await onA.request('search', { query });
      expect(ack, query).toEqual({ ok: true, data: { results: expect.any(Array) } });
    }
    expect(idsOf(await search(onA, { query: "parser's" }))).toHaveLength(1);
    expect(idsOf(await search(onA, { query: '"unclosed quote handling' }))).toEqual([]);
    expect(idsOf(await search(onA, { query: '"quote handling' }))).toHaveLength(1);
    // Only separators, or only excluded words: nothing, never every row.
    expect(await search(onA, { query: '!!! ::: ***' })).toEqual([]);
    expect(await search(onA, { query: '-nothing -else' })).toEqual([]);
    for (const query of ['', '   ', '\t\n', 'x'.repeat(501), 'x'.repeat(10_240), 'a\u0000b']) {
      const ack = await onA.request('search', { query });
      expect(ack, JSON.stringify(query.slice(0, 20))).toMatchObject({ ok: false, error: { code: ErrorCode.VALIDATION } });
    }
    for (const payload of [{ query: 'x', limit: 0 }, { query: 'x', limit: 51 }, { query: 'x', kinds: [] }, { query: 'x', kinds: ['user'] }]) {
      expect(await onA.request('search', payload as never)).toMatchObject({ ok: false, error: { code: ErrorCode.VALIDATION } });
    }
    const errors = cluster.a.logs.records().slice(logsFrom).filter((r) => r.level === 'error' || r.level === 'fatal');
    expect(errors).toEqual([]);
  });
});

describe('CHAT-11 the search_history tool', () => {
  it('[CHAT-11][CHAT-4] "search my history for …" runs search_history as the user, through the offline model', async () => {
    const alice = await userWithTabs();
    const bob = await userWithTabs();
    const task = (await alice.onA.call('task:create', { title: 'Book the saxophone lesson' })).task;
    await ask(bob.onA, 'My saxophone needs a new reed');
    const asked = await ask(alice.onA, 'search my history for saxophone');
    const [call] = asked.answer.toolCalls;
    expect(call).toMatchObject({ name: 'search_history', input: { query: 'saxophone' }, status: 'ok' });
    const results = (call!.result as { results: { kind: string; id: string; snippet: string }[] }).results;
    // Her task, and her own question to the assistant and the conversation it started; nothing of Bob's.
    expect(results.map((r) => r.kind).sort()).toEqual(['conversation', 'message', 'task']);
    expect(results.find((r) => r.kind === 'task')).toMatchObject({ id: task.id, snippet: 'Book the «saxophone» lesson' });
    expect(results.find((r) => r.kind === 'message')).toMatchObject({ id: asked.userMessage.id });
    expect(JSON.stringify(results)).not.toContain('reed');
    expect(asked.answer.content).toContain('I found 3 matches for "saxophone"');
    expect(asked.answer.content).toContain('Book the «saxophone» lesson');

    const what = await ask(alice.onB, 'What did I say about the clarinet?');
    expect(what.answer.toolCalls[0]).toMatchObject({ name: 'search_history', input: { query: 'the clarinet' }, status: 'ok' });
    expect(what.answer.content).toContain('I found 2 matches for "the clarinet"');
  });

  it('[CHAT-11][CHAT-4] the tool validates like the others: a bad input is a VALIDATION result, a trashed task says so', async () => {
    const { user, onA } = await userWithTabs();
    const task = (await onA.call('task:create', { title: 'Old oboe repair' })).task;
    await onA.call('task:delete', { id: task.id });
    const run = (input: unknown) => runTool(cluster.a.deps, user.auth.user.id, 'search_history', input, cluster.a.deps.logger);
    for (const input of [{}, { query: '' }, { query: '  ' }, { query: 'x'.repeat(501) }, { query: 'oboe', limit: 0 }, { query: 'oboe', extra: 1 }, { query: 'oboe', kinds: ['user'] }]) {
      expect(await run(input), JSON.stringify(input)).toMatchObject({ ok: false, result: { code: ErrorCode.VALIDATION } });
    }
    expect(await run({ query: 'oboe' })).toEqual({
      ok: true,
      result: { results: [{ kind: 'task', id: task.id, conversationId: null, title: 'Old oboe repair', snippet: 'Old «oboe» repair', at: expect.any(String), status: 'deleted' }] },
    });
    expect(await run({ query: 'oboe', kinds: ['message'] })).toEqual({ ok: true, result: { results: [] } });
  });
});

describe('CHAT-11 the plan', () => {
  it('[CHAT-11] the search statement reads each table through its GIN index on (user_id, search), as the pool plans it', async () => {
    const sql = cluster.a.deps.sql;
    const users = await Promise.all(Array.from({ length: 4 }, () => signUp(cluster.a.url)));
    const [owner] = users;
    const ownerId = owner!.auth.user.id;
    // Words from a small vocabulary, a few thousand rows per table, spread over the users: enough that reading a
    // user's rows and filtering costs more than the index.
    const words = sql.unsafe(`(select string_agg(w, ' ') from (select (array['alpha','bravo','charlie','delta','echo','foxtrot','golf','hotel','india','juliet','kilo','lima','mike','november','oscar','papa','quebec','romeo','sierra','tango'])[1 + (random() * 19)::int] || (random() * 200)::int as w from generate_series(1, 12 + g % 7)) s)`);
    const ids = users.map((u) => u.auth.user.id);
    await sql`
      insert into conversations (id, user_id, title, created_at, updated_at)
      select gen_random_uuid(), (${ids}::uuid[])[1 + g % 4], left(${words}, 200), now(), now() from generate_series(1, 6000) g`;
    await sql`
      insert into messages (id, conversation_id, user_id, role, content, status, tool_calls, created_at, updated_at)
      select gen_random_uuid(), c.id, c.user_id, 'user', ${words}, 'complete', '[]', now(), now()
        from conversations c cross join generate_series(1, 2) g where c.user_id = any(${ids}::uuid[])`;
    await sql`
      insert into tasks (id, user_id, title, description, intensity, status, dependencies, version, seq, created_at, updated_at)
      select gen_random_uuid(), (${ids}::uuid[])[1 + g % 4], ${words}, ${words}, 3, 'not_started', '{}', 1, 1, now(), now() from generate_series(1, 6000) g`;
    // As autovacuum leaves them: statistics, and each GIN index's pending list (fastupdate) merged into the index.
    await sql.unsafe('vacuum analyze tasks, messages, conversations');

    const repo = createSearchRepository(sql);
    const plan = await repo.explain(ownerId, { query: 'tango42', kinds: ['task', 'message', 'conversation'], limit: 20 });
    for (const index of ['tasks_search_index', 'messages_search_index', 'conversations_search_index']) {
      expect(plan, plan).toContain(`Bitmap Index Scan on ${index}`);
    }
    expect(plan).not.toMatch(/Seq Scan on (tasks|messages|conversations)/);
    // The plan found rows; and another user's id finds none of the owner's.
    const hits = await repo.search(ownerId, { query: 'tango42 or tango43', kinds: ['task', 'message'], limit: 50 });
    expect(hits.length).toBeGreaterThan(0);
    const owned = await sql<{ id: string }[]>`select id from tasks where user_id = ${ownerId} union all select id from messages where user_id = ${ownerId}`;
    const ownIds = new Set(owned.map((r) => r.id));
    expect(hits.every((h) => ownIds.has(h.id))).toBe(true);
    expect(await repo.search(randomUUID(), { query: 'tango42', kinds: ['task', 'message', 'conversation'], limit: 20 })).toEqual([]);
  });
});
