import type Anthropic from '@anthropic-ai/sdk';
import { describe, expect, it } from 'vitest';
import { readRound, StreamCutError } from './upstream-round.js';

type Event = Anthropic.RawMessageStreamEvent;

async function* from(events: Event[]): AsyncIterable<Event> {
  for (const e of events) yield e;
}

const start = (input: number): Event =>
  ({ type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'm', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: input, output_tokens: 1 } } }) as unknown as Event;
const textStart = (index: number): Event => ({ type: 'content_block_start', index, content_block: { type: 'text', text: '', citations: null } }) as Event;
const text = (index: number, t: string): Event => ({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: t } });
const toolStart = (index: number, id: string, name: string): Event => ({ type: 'content_block_start', index, content_block: { type: 'tool_use', id, name, input: {} } }) as Event;
const json = (index: number, partial: string): Event => ({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: partial } });
const stop = (index: number): Event => ({ type: 'content_block_stop', index });
const delta = (reason: Anthropic.StopReason, output: number): Event => ({ type: 'message_delta', delta: { stop_reason: reason, stop_sequence: null }, usage: { output_tokens: output } }) as unknown as Event;
const end: Event = { type: 'message_stop' };

describe('readRound', () => {
  it('passes text deltas on as they come and keeps the text, usage and stop reason', async () => {
    const seen: string[] = [];
    let events = 0;
    const r = await readRound(from([start(12), textStart(0), text(0, 'Hel'), text(0, 'lo'), stop(0), delta('end_turn', 7), end]), (t) => seen.push(t), () => events++);
    expect(seen).toEqual(['Hel', 'lo']);
    expect(events).toBe(7);
    expect(r).toEqual({
      content: [{ type: 'text', text: 'Hello' }],
      toolUses: [],
      stopReason: 'end_turn',
      inputTokens: 12,
      outputTokens: 7,
      cacheReadTokens: 0,
      cacheCreationTokens: 0,
    });
  });

  it('[CHAT-12] reads the cache counts of message_start, and the cumulative ones of message_delta when it repeats them', async () => {
    const cached = (read: number | null, creation: number | null): Event =>
      ({ type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'm', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 9, output_tokens: 1, cache_read_input_tokens: read, cache_creation_input_tokens: creation } } }) as unknown as Event;
    const first = await readRound(from([cached(2000, 300), delta('end_turn', 4), end]), () => undefined, () => undefined);
    expect(first).toMatchObject({ inputTokens: 9, cacheReadTokens: 2000, cacheCreationTokens: 300, outputTokens: 4 });
    const absent = await readRound(from([cached(null, null), delta('end_turn', 4), end]), () => undefined, () => undefined);
    expect(absent).toMatchObject({ cacheReadTokens: 0, cacheCreationTokens: 0 });
    const repeated: Event = { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 5, input_tokens: 10, cache_read_input_tokens: 2100, cache_creation_input_tokens: null } } as unknown as Event;
    expect(await readRound(from([cached(2000, 300), repeated, end]), () => undefined, () => undefined)).toMatchObject({
      inputTokens: 10,
      cacheReadTokens: 2100,
      cacheCreationTokens: 300,
      outputTokens: 5,
    });
  });

  it('[CHAT-13] keeps every stop reason as it came, and a server tool\'s call and result so that a paused turn goes back whole', async () => {
    for (const reason of ['max_tokens', 'stop_sequence', 'refusal', 'model_context_window_exceeded'] as const) {
      expect((await readRound(from([start(1), delta(reason, 2), end]), () => undefined, () => undefined)).stopReason).toBe(reason);
    }
    const serverTool = { type: 'content_block_start', index: 1, content_block: { type: 'server_tool_use', id: 'srvtoolu_1', name: 'web_search', input: {} } } as unknown as Event;
    const result = { type: 'content_block_start', index: 2, content_block: { type: 'web_search_tool_result', tool_use_id: 'srvtoolu_1', content: [] } } as unknown as Event;
    const r = await readRound(
      from([start(1), textStart(0), text(0, 'Searching.'), stop(0), serverTool, json(1, '{"query":"sam"}'), stop(1), result, stop(2), delta('pause_turn', 9), end]),
      () => undefined,
      () => undefined,
    );
    expect(r.stopReason).toBe('pause_turn');
    expect(r.toolUses).toEqual([]);
    expect(r.content).toEqual([
      { type: 'text', text: 'Searching.' },
      { type: 'server_tool_use', id: 'srvtoolu_1', name: 'web_search', input: { query: 'sam' } },
      { type: 'web_search_tool_result', tool_use_id: 'srvtoolu_1', content: [] },
    ]);
  });

  it('joins a tool call’s JSON deltas and parses them once, after text', async () => {
    const r = await readRound(
      from([start(3), textStart(0), text(0, 'On it.'), stop(0), toolStart(1, 'toolu_1', 'create_task'), json(1, '{"title":"bu'), json(1, 'y milk"}'), stop(1), toolStart(2, 'toolu_2', 'list_tasks'), stop(2), delta('tool_use', 40), end]),
      () => undefined,
      () => undefined,
    );
    expect(r.stopReason).toBe('tool_use');
    expect(r.content).toEqual([
      { type: 'text', text: 'On it.' },
      { type: 'tool_use', id: 'toolu_1', name: 'create_task', input: { title: 'buy milk' } },
      { type: 'tool_use', id: 'toolu_2', name: 'list_tasks', input: {} },
    ]);
    expect(r.toolUses).toEqual([
      { id: 'toolu_1', name: 'create_task', input: { title: 'buy milk' } },
      { id: 'toolu_2', name: 'list_tasks', input: {} },
    ]);
  });

  it('hands unparsable tool input to the tool as its raw text, and sends {} back upstream', async () => {
    const r = await readRound(from([start(1), toolStart(0, 'toolu_1', 'create_task'), json(0, '{"title":'), stop(0), delta('tool_use', 5), end]), () => undefined, () => undefined);
    expect(r.toolUses).toEqual([{ id: 'toolu_1', name: 'create_task', input: '{"title":' }]);
    expect(r.content).toEqual([{ type: 'tool_use', id: 'toolu_1', name: 'create_task', input: {} }]);
  });

  it('treats a stream that ends before message_stop as cut off', async () => {
    const seen: string[] = [];
    await expect(readRound(from([start(1), textStart(0), text(0, 'partial')]), (t) => seen.push(t), () => undefined)).rejects.toBeInstanceOf(StreamCutError);
    expect(seen).toEqual(['partial']);
  });
});
