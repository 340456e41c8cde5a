/**
 * Prompt caching (CHAT-12) on two nodes, against the project's offline model,
 * whose prompt cache reads the request as the API does (breakpoints, prefixes
 * byte for byte, a minimum length): the second turn of a conversation sends the
 * same bytes up to its last breakpoint as the first, and its stored usage
 * counts the cache read.
 */
import { describe, expect, it } from 'vitest';
import { randomSecret } from './support/env.js';
import { useChatCluster } from './support/chat-cluster.js';
import type { RecordedRequest } from '../dev/offline-model/server.js';

const cluster = useChatCluster('cache');


/** The request's bytes, in the API's order, up to and including its last `cache_control` block. */
function bytesToLastBreakpoint(request: RecordedRequest): string {
  const body = request.body as { tools: unknown[]; system: { cache_control?: unknown }[]; messages: unknown[] };
  const parts = [...body.tools, ...body.system, ...body.messages];
  let last = -1;
  parts.forEach((part, i) => {
    if (part && typeof part === 'object' && 'cache_control' in part) last = i;
  });
  expect(last).toBeGreaterThanOrEqual(0);
  return JSON.stringify(parts.slice(0, last + 1));
}

describe('CHAT-12 prompt caching', () => {
  it('[CHAT-12] the second turn sends the same bytes up to the last breakpoint, reads them from the cache, and stores the counts', async () => {
    const { tabA: onA, tabB: onB } = await cluster.twoTabs({ fullName: `Cache ${randomSecret(4)}`, timezone: 'Europe/Lisbon' });

    const first = await onA.call('chat:send', { content: 'Hello Sam, first turn' });
    const firstDone = await onB.waitFor('chat:done', (d) => d.message.id === first.assistantMessageId, 15_000);
    // A task changes the part after the breakpoint between the turns, as a day with Sam does.
    await onB.call('task:create', { title: 'Something new between the turns', deadline: '2031-01-01' });
    const second = await onB.call('chat:send', { conversationId: first.conversationId, content: 'And a second turn' });
    const secondDone = await onA.waitFor('chat:done', (d) => d.message.id === second.assistantMessageId, 15_000);

    const [r1, r2] = ['Hello Sam, first turn', 'And a second turn'].map(
      (text) => cluster.upstream.requests.filter((r) => JSON.stringify(r.body).includes(text) && (r.body as { system?: unknown }).system).at(-1)!,
    );
    expect(bytesToLastBreakpoint(r2!)).toBe(bytesToLastBreakpoint(r1!));
    // What changes from turn to turn comes after the breakpoint: the clock and the open tasks.
    const system2 = (r2!.body as { system: { text: string; cache_control?: unknown }[] }).system;
    expect(system2[0]!.cache_control).toEqual({ type: 'ephemeral' });
    expect(system2[0]!.text).not.toMatch(/now is|Something new/);
    expect(system2[1]!.text).toMatch(/now is .*Something new/s);

    expect(firstDone.message.usage).toMatchObject({ cacheReadTokens: 0, cacheCreationTokens: expect.any(Number) });
    expect(firstDone.message.usage.cacheCreationTokens).toBeGreaterThan(1_000);
    expect(secondDone.message.usage.cacheReadTokens).toBe(firstDone.message.usage.cacheCreationTokens);
    expect(secondDone.message.usage.cacheCreationTokens).toBe(0);
    // Stored as streamed: a tab reading the history later sees the same counts.
    const history = await onA.call('chat:history', { conversationId: first.conversationId });
    expect(history.messages.find((m) => m.id === second.assistantMessageId)!.usage).toEqual(secondDone.message.usage);

    // The operators see the hit ratio: node b ran the second answer, which read most of its prompt from the cache.
    const live = cluster.b.deps.metrics.live();
    expect(live.cacheReadTokens).toBeGreaterThanOrEqual(secondDone.message.usage.cacheReadTokens);
    expect(live.cacheHitRatio).toBeGreaterThan(0.5);
    const metrics = await cluster.b.deps.metrics.registry.getSingleMetric('sam_assistant_prompt_tokens_total')!.get();
    expect(metrics.values.find((v) => v.labels.source === 'cache_read')!.value).toBeGreaterThan(0);
  });
});
