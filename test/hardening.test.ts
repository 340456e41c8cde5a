/**
 * The smaller holes of the audit (issue 19, "Low"), each on a production node
 * with the project's scriptable Anthropic-compatible endpoint: the history a
 * prompt reads (CHAT-8).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { productionEnv, randomSecret } from './support/env.js';
import { startTestApp, type TestApp } from './support/app.js';
import { signUp } from './support/users.js';
import { connectReady, tabTracker } from './support/sockets.js';
import { createAnthropicCompatibleServer, type AnthropicCompatibleServer } from '../dev/offline-model/server.js';

let upstream: AnthropicCompatibleServer;
let app: TestApp;
const { track, closeAll } = tabTracker();
const sql = (query: string, params: unknown[] = []) => app.deps.orm.em.getConnection().execute(query, params);

beforeAll(async () => {
  upstream = await createAnthropicCompatibleServer({ deltaDelayMs: 0 });
  app = await startTestApp(productionEnv({ ANTHROPIC_BASE_URL: upstream.url, RATE_LIMIT_PER_MINUTE: '10000', SECRET_KEY: randomSecret() }));
});
afterAll(async () => {
  closeAll();
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
