/**
 * The smaller holes of the audit (issue 19, "Low"), each on a production node
 * with the project's scriptable Anthropic-compatible endpoint: the history a
 * prompt reads (CHAT-8), database errors in the log (GEN-1), a tool's INTERNAL
 * error (GEN-1), the export's IP addresses and the deletion's running answers
 * (§6.3), and source maps (§4).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { productionEnv, randomSecret, strongPassword } from './support/env.js';
import { startNodeProcess, startTestApp, type TestApp } from './support/app.js';
import { RestClient } from './support/http.js';
import { signUp } from './support/users.js';
import { connectReady, tabTracker } from './support/sockets.js';
import { createAnthropicCompatibleServer, type AnthropicCompatibleServer } from '../dev/offline-model/server.js';
import { ErrorCode } from '../shared/errors.js';

let upstream: AnthropicCompatibleServer;
let app: TestApp;
const { track, closeAll } = tabTracker();
const sql = (query: string, params: unknown[] = []) => app.deps.orm.em.getConnection().execute(query, params);
/** Rows whose text starts with this fail to insert: a database error of the test's making. */
const FAULT = 'db-fault-';

beforeAll(async () => {
  upstream = await createAnthropicCompatibleServer({ deltaDelayMs: 0 });
  app = await startTestApp(productionEnv({ ANTHROPIC_BASE_URL: upstream.url, RATE_LIMIT_PER_MINUTE: '10000', SECRET_KEY: randomSecret() }));
  await sql(`create or replace function sam_test_fault() returns trigger language plpgsql as $$
    begin
      if (to_jsonb(new) ->> tg_argv[0]) like '${FAULT}%' then raise exception 'injected fault in %', tg_table_name; end if;
      return new;
    end $$`);
  await sql(`create or replace trigger sam_test_fault_users before insert on users for each row execute function sam_test_fault('email')`);
  await sql(`create or replace trigger sam_test_fault_tasks before insert on tasks for each row execute function sam_test_fault('title')`);
});
afterAll(async () => {
  closeAll();
  await sql('drop trigger if exists sam_test_fault_users on users').catch(() => undefined);
  await sql('drop trigger if exists sam_test_fault_tasks on tasks').catch(() => undefined);
  await app?.close();
  await upstream?.close();
});

const doneOf = (tab: { waitFor: (e: string, m: (d: any) => boolean, t?: number) => Promise<any> }, id: string) => tab.waitFor('chat:done', (d) => d.message.id === id, 15_000);

describe('CHAT-8 the history a prompt reads', () => {
  it('[CHAT-8] a conversation of 250 short messages: the request carries the newest 200, not the whole conversation', async () => {
    const user = await signUp(app.url);
    const tab = track(await connectReady(app.url, user.auth.accessToken));
    upstream.enqueue({ kind: 'text', text: 'Noted.' });
    const first = await tab.call('chat:send', { content: 'Start' });
    await doneOf(tab, first.assistantMessageId);
    await sql(
      `insert into messages (id, conversation_id, user_id, role, content, status, tool_calls, created_at, updated_at)
       select gen_random_uuid(), ?, ?, case when i % 2 = 0 then 'user' else 'assistant' end, 'm' || i, 'complete', '[]',
              now() - interval '1 hour' + make_interval(secs => i), now()
         from generate_series(0, 249) i`,
      [first.conversationId, user.auth.user.id],
    );
    upstream.enqueue({ kind: 'text', text: 'Still here.' });
    const next = await tab.call('chat:send', { conversationId: first.conversationId, content: 'And now?' });
    await doneOf(tab, next.assistantMessageId);
    const body = upstream.requests.filter((r) => JSON.stringify(r.body).includes('And now?')).at(-1)!.body as { messages: { content: string }[] };
    const contents = body.messages.map((m) => m.content);
    expect(contents.length).toBeLessThanOrEqual(201);
    expect(contents).toContain('m249');
    expect(contents).not.toContain('m0');
    expect(contents.at(-1)).toBe('And now?');
  });
});

describe('GEN-1 errors in the log', () => {
  it('[GEN-1] a database error while storing a password hash is INTERNAL with an errorId in the log, and no log line holds the hash or the values of the statement', async () => {
    const password = strongPassword();
    const res = await new RestClient(app.url).post('/api/v1/auth/signup', { email: `${FAULT}${Date.now()}@example.test`, password });
    expect(res.status).toBe(500);
    expect(res.body.code).toBe(ErrorCode.INTERNAL);
    const errorId = res.body.details.errorId as string;
    const record = await app.logs.waitFor((r) => r.errorId === errorId);
    expect(JSON.stringify(record)).toContain('injected fault');
    const text = app.logs.lines.join('\n');
    expect(text).not.toContain('$argon2');
    expect(text).not.toContain(password);
  });

  it('[GEN-1] an INTERNAL error inside an assistant tool is logged with the errorId its result carries', async () => {
    const user = await signUp(app.url);
    const tab = track(await connectReady(app.url, user.auth.accessToken));
    upstream.enqueue({ kind: 'tool_use', name: 'create_task', input: { title: `${FAULT}tool` } }, { kind: 'text', text: 'That failed.' });
    const sent = await tab.call('chat:send', { content: 'add the faulty task' });
    const { toolCall } = await tab.waitFor('chat:tool', (d) => d.messageId === sent.assistantMessageId);
    expect(toolCall.status).toBe('error');
    expect(toolCall.result.code).toBe(ErrorCode.INTERNAL);
    const errorId = toolCall.result.details?.errorId as string | undefined;
    expect(errorId).toMatch(/^[0-9a-f-]{36}$/);
    const record = await app.logs.waitFor((r) => r.errorId === errorId, 5_000);
    expect(record.level).toBe('error');
    expect(JSON.stringify(record)).toContain('injected fault');
    await doneOf(tab, sent.assistantMessageId);
  });
});

describe('§6.3 export and deletion', () => {
  it('[§6.3] user:export holds each session\'s IP address', async () => {
    const user = await signUp(app.url);
    const tab = track(await connectReady(app.url, user.auth.accessToken));
    const exported = await tab.call('user:export', {});
    expect(exported.sessions).toHaveLength(1);
    expect(exported.sessions[0]!.ip).toMatch(/127\.0\.0\.1/);
  });

  it('[§6.3][CHAT-5] user:delete stops the user\'s answers being generated: the upstream request is aborted at once', async () => {
    const user = await signUp(app.url);
    const tab = track(await connectReady(app.url, user.auth.accessToken));
    const long = Array.from({ length: 200 }, (_, i) => `word${i}`).join(' ');
    upstream.enqueue({ kind: 'text', text: long, chunkSize: 4, delayMs: 40 });
    const sent = await tab.call('chat:send', { content: 'talk for a long time' });
    const request = await upstream.waitForRequest((r) => JSON.stringify(r.body).includes('talk for a long time'));
    await tab.waitFor('chat:delta', (d) => d.messageId === sent.assistantMessageId && d.seq >= 1);
    expect(await tab.request('user:delete', { password: user.password })).toEqual({ ok: true, data: {} });
    await upstream.waitForAbort(request.id, 3_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(app.logs.records().filter((r) => r.msg === 'generation crashed')).toEqual([]);
  });
});

describe('§4 source maps', () => {
  it('[§4] production serves the built client but none of its source maps', async () => {
    // The compiled server, as deployed: it serves dist/client (run `npm run build` first).
    await using node = await startNodeProcess(productionEnv());
    const index = await new RestClient(node.url).get('/');
    expect(index.status).toBe(200);
    const script = /<script[^>]+src="([^"]+\.js)"/.exec(index.body as string)?.[1];
    expect(script).toBeDefined();
    expect((await new RestClient(node.url).get(script!)).status).toBe(200);
    const map = await new RestClient(node.url).get(`${script}.map`);
    expect(map.status).toBe(404);
    expect(map.body.code).toBe(ErrorCode.NOT_FOUND);
  });
});
