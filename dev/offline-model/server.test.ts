import { randomUUID } from 'node:crypto';
import Anthropic, { APIError, APIUserAbortError, BadRequestError, InternalServerError } from '@anthropic-ai/sdk';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LONG_STORY, REFUSAL_TEST_PROMPT } from './replies.js';
import {
  createAnthropicCompatibleServer,
  type AnthropicCompatibleServer,
  type DeltaWrite,
  type OfflineModelLogger,
  type OfflineModelOptions,
} from './server.js';

type MessageParam = Anthropic.MessageParam;
type ClientOptions = NonNullable<ConstructorParameters<typeof Anthropic>[0]>;

const MODEL = 'claude-offline-test';
const TASK_ID = randomUUID();
const SYSTEM = ['You are Sam, a personal assistant.', 'Open tasks:', `- [${TASK_ID}] "buy milk" — not started, intensity 3`].join('\n');

// The server passes its pino logger: it must fit the offline model's logger type.
const silentPino: OfflineModelLogger = pino({ level: 'silent' });

let server: AnthropicCompatibleServer;
let deltas: { requestId: number; delta: DeltaWrite }[];

async function start(options: OfflineModelOptions = {}): Promise<void> {
  deltas = [];
  server = await createAnthropicCompatibleServer({
    deltaDelayMs: 0,
    logger: silentPino,
    onDelta: (requestId, delta) => deltas.push({ requestId, delta }),
    ...options,
  });
}

beforeEach(() => start());
afterEach(() => server.close());

function client(options: ClientOptions = {}): Anthropic {
  return new Anthropic({ apiKey: randomUUID(), baseURL: server.url, maxRetries: 0, ...options });
}

function params(content: string, extra: Partial<Anthropic.MessageCreateParamsStreaming> = {}) {
  return { model: MODEL, max_tokens: 1024, messages: [{ role: 'user' as const, content }], ...extra };
}

const post = (body: string, path = '/v1/messages') =>
  fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': randomUUID() }, body });

interface WireEvent {
  event: string;
  data: { type: string; [key: string]: unknown };
}

/** Posts directly and splits the SSE body into events, pings included. */
async function rawSse(body: object): Promise<WireEvent[]> {
  const response = await post(JSON.stringify({ ...body, stream: true }));
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const text = await response.text();
  expect(text.endsWith('\n\n')).toBe(true);
  return text
    .split('\n\n')
    .filter((chunk) => chunk.length > 0)
    .map((chunk) => {
      const [eventLine, dataLine, ...rest] = chunk.split('\n');
      expect(rest).toEqual([]);
      expect(eventLine).toMatch(/^event: /);
      expect(dataLine).toMatch(/^data: /);
      return {
        event: (eventLine ?? '').slice('event: '.length),
        data: JSON.parse((dataLine ?? '').slice('data: '.length)) as WireEvent['data'],
      };
    });
}

describe('streaming text', () => {
  it('streams text deltas in the official event order and the SDK reassembles them', async () => {
    const text = 'Hello! This answer arrives in small pieces, as Claude would send it.';
    server.enqueue({ kind: 'text', text, chunkSize: 5 });
    const stream = client().messages.stream(params('hi'));
    const seen: string[] = [];
    let streamedText = '';
    stream.on('text', (delta) => (streamedText += delta));
    for await (const event of stream) seen.push(event.type);
    const message = await stream.finalMessage();

    expect(seen).toEqual([
      'message_start',
      'content_block_start',
      ...Array<string>(Math.ceil(text.length / 5)).fill('content_block_delta'),
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    expect(streamedText).toBe(text);
    expect(message.content).toEqual([{ type: 'text', text }]);
    expect(message.stop_reason).toBe('end_turn');
    expect(message.model).toBe(MODEL);
    expect(message.id).toMatch(/^msg_/);
  });

  it('speaks the wire format exactly: event names match data types, a ping, one word per delta, estimated usage', async () => {
    server.enqueue({ kind: 'text', text: 'one two three four five' });
    const events = await rawSse(params('hi'));
    for (const e of events) expect(e.data.type).toBe(e.event);
    expect(events.map((e) => e.event)).toEqual([
      'message_start',
      'content_block_start',
      'ping',
      ...Array<string>(5).fill('content_block_delta'),
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    expect(events[0]?.data['message']).toMatchObject({
      type: 'message',
      role: 'assistant',
      model: MODEL,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: expect.any(Number), output_tokens: 1 },
    });
    const words = events
      .filter((e) => e.event === 'content_block_delta')
      .map((e) => (e.data['delta'] as { type: string; text: string }).text);
    expect(words).toEqual(['one ', 'two ', 'three ', 'four ', 'five']);
    expect(events.find((e) => e.event === 'message_delta')?.data).toEqual({
      type: 'message_delta',
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { output_tokens: 6 },
    });
  });

  it('paces deltas on a fixed schedule and reports each write to onDelta', async () => {
    server.enqueue({ kind: 'text', text: 'abcd'.repeat(10), chunkSize: 4, delayMs: 20 });
    const message = await client().messages.stream(params('hi')).finalMessage();
    expect(message.content).toEqual([{ type: 'text', text: 'abcd'.repeat(10) }]);

    const [request] = server.requests;
    expect(request).toMatchObject({ id: 1, completed: true, aborted: false });
    expect(deltas.map((d) => [d.requestId, d.delta.index, d.delta.type, d.delta.text])).toEqual(
      Array.from({ length: 10 }, () => [1, 0, 'text_delta', 'abcd']),
    );
    const times = deltas.map((d) => d.delta.at);
    const span = (times.at(-1) ?? 0) - (times[0] ?? 0);
    // 10 deltas 20 ms apart: 9 intervals
    expect(span).toBeGreaterThanOrEqual(170);
    expect(span).toBeLessThan(1000);
  });

  it('answers other text with a deterministic friendly markdown reply in many deltas', async () => {
    const ask = 'Can you plan my week?';
    const first = await client().messages.stream(params(ask)).finalMessage();
    const second = await client().messages.stream(params(ask)).finalMessage();
    expect(second.content).toEqual(first.content);
    const text = first.content[0]?.type === 'text' ? first.content[0].text : '';
    expect(text).toContain(ask);
    expect(text).toMatch(/offline model/);
    expect(text).toMatch(/^- `add task: buy milk`/m);
    expect(deltas.filter((d) => d.requestId === 1).length).toBeGreaterThan(10);
    expect(first.stop_reason).toBe('end_turn');
  });
});

describe('tool calls', () => {
  it('turns "add task: buy milk" into a create_task tool_use, its input streamed as input_json_delta', async () => {
    const stream = client().messages.stream(params('add task: buy milk'));
    const jsonChunks: string[] = [];
    stream.on('inputJson', (partial) => jsonChunks.push(partial));
    const message = await stream.finalMessage();

    expect(message.stop_reason).toBe('tool_use');
    expect(message.content).toEqual([
      { type: 'text', text: 'Adding that task.' },
      { type: 'tool_use', id: expect.stringMatching(/^toolu_/), name: 'create_task', input: { title: 'buy milk' } },
    ]);
    const json = deltas.filter((d) => d.delta.type === 'input_json_delta').map((d) => d.delta.text);
    expect(json.length).toBeGreaterThan(2);
    expect(json[0]).toBe('');
    expect(json.join('')).toBe('{"title":"buy milk"}');
    expect(jsonChunks.length).toBeGreaterThan(0);
  });

  it('sends the tool_use block start with empty input, as the API does', async () => {
    const events = await rawSse(params('add task: buy milk'));
    const starts = events.filter((e) => e.event === 'content_block_start').map((e) => e.data['content_block']);
    expect(starts).toEqual([
      { type: 'text', text: '' },
      { type: 'tool_use', id: expect.stringMatching(/^toolu_/), name: 'create_task', input: {} },
    ]);
    expect(events.find((e) => e.event === 'message_delta')?.data['delta']).toEqual({ stop_reason: 'tool_use', stop_sequence: null });
  });

  it('completes a task by the id listed in the system prompt, given as a string or as blocks', async () => {
    for (const system of [SYSTEM, [{ type: 'text' as const, text: SYSTEM }]]) {
      const message = await client().messages.stream(params('complete BUY MILK', { system })).finalMessage();
      expect(message.content.find((b) => b.type === 'tool_use')).toMatchObject({ name: 'complete_task', input: { id: TASK_ID } });
      expect(message.stop_reason).toBe('tool_use');
    }
  });

  it('answers a tool_result turn with a text summary and end_turn', async () => {
    const api = client();
    const first = await api.messages.stream(params('add task: buy milk')).finalMessage();
    const toolUse = first.content.find((b) => b.type === 'tool_use');
    if (toolUse?.type !== 'tool_use') throw new Error('expected a tool_use block');
    const messages: MessageParam[] = [
      { role: 'user', content: 'add task: buy milk' },
      { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: toolUse.id, content: JSON.stringify({ task: { id: TASK_ID, title: 'buy milk' } }) }] },
    ];
    const reply = await api.messages.stream({ model: MODEL, max_tokens: 1024, messages }).finalMessage();
    expect(reply.stop_reason).toBe('end_turn');
    expect(reply.content).toEqual([{ type: 'text', text: 'Done — created "buy milk".' }]);
  });
});

describe('scripted failures', () => {
  it('surfaces a scripted 529 as the SDK APIError with the Anthropic body', async () => {
    server.enqueue({ kind: 'error', status: 529, errorType: 'overloaded_error' });
    const error = await client().messages.stream(params('hi')).finalMessage().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIError);
    expect(error).toMatchObject({ status: 529, type: 'overloaded_error' });
    expect((error as APIError).error).toEqual({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
  });

  it('surfaces a scripted 500 api_error', async () => {
    server.enqueue({ kind: 'error', status: 500, errorType: 'api_error' });
    const error = await client().messages.create({ ...params('hi'), stream: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InternalServerError);
    expect(error).toMatchObject({ status: 500, type: 'api_error' });
  });

  it('rejects the SDK stream when the socket is cut mid-stream, and records no abort', async () => {
    server.enqueue({ kind: 'cut', text: 'abcdefghijklmnopqrstuvwxyz', chunkSize: 4, afterChunks: 3 });
    const stream = client().messages.stream(params('hi'));
    let received = '';
    stream.on('text', (t) => (received += t));
    await expect(stream.finalMessage()).rejects.toThrow();
    expect(deltas.map((d) => d.delta.text)).toEqual(['abcd', 'efgh', 'ijkl']);
    expect(received).toBe('abcdefghijkl');
    await expect(server.waitForAbort(1)).rejects.toThrow(/without a client abort/);
    expect(server.requests[0]).toMatchObject({ aborted: false, completed: false });
  });

  it('holds a stalled stream until the client aborts, then records the abort', async () => {
    server.enqueue({ kind: 'stall', text: 'thinking about it', chunkSize: 4, afterChunks: 2 });
    const controller = new AbortController();
    const stream = client().messages.stream(params('hi'), { signal: controller.signal });
    const firstText = new Promise<void>((resolve) => stream.once('text', () => resolve()));
    const outcome = stream.finalMessage().catch((e: unknown) => e);
    const request = await server.waitForRequest();
    await firstText;
    expect(request.aborted).toBe(false);
    controller.abort();

    expect(await outcome).toBeInstanceOf(APIUserAbortError);
    expect(await server.waitForAbort(request.id)).toMatchObject({ aborted: true, completed: false });
    expect(deltas).toHaveLength(2);
  });

  it('ends open connections on close so nothing hangs', async () => {
    server.enqueue({ kind: 'stall', text: 'never finishes' });
    const outcome = client().messages.stream(params('hi')).finalMessage().catch((e: unknown) => e);
    const request = await server.waitForRequest();
    await server.close();
    expect(await outcome).toBeInstanceOf(Error);
    expect(request).toMatchObject({ aborted: false, completed: false });
  });

  it('answers 500 api_error when the script function throws', async () => {
    server.setScript(() => {
      throw new Error('script bug');
    });
    await expect(client().messages.create({ ...params('hi'), stream: true })).rejects.toBeInstanceOf(InternalServerError);
  });
});

describe('requests it refuses', () => {
  it('answers 400 invalid_request_error to bodies the API would reject, and to requests without stream: true', async () => {
    const bodies = [
      'not json',
      JSON.stringify({ model: MODEL, messages: [], stream: true }),
      JSON.stringify({ max_tokens: 5, messages: [{ role: 'user', content: 'hi' }], stream: true }),
      JSON.stringify(params('hi')),
    ];
    for (const body of bodies) {
      const response = await post(body);
      expect(response.status, body).toBe(400);
      expect(await response.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    }
    await expect(client().messages.create(params('hi'))).rejects.toBeInstanceOf(BadRequestError);
    expect(server.requests.map((r) => r.params)).toEqual([null, null, null, null, null]);
  });

  it('answers other routes with 404 not_found_error', async () => {
    for (const response of [await post('{}', '/v1/messages/count_tokens'), await fetch(`${server.url}/v1/messages`)]) {
      expect(response.status).toBe(404);
      expect(await response.json()).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
    }
  });
});

describe('scripting and recording', () => {
  it('serves the queue first, then the script function, then the default; setScript(undefined) empties the queue', async () => {
    await server.close();
    await start({ script: (req) => (req.params.messages.length > 1 ? { kind: 'text', text: 'from the script' } : undefined) });
    const api = client();
    const answer = async (messages: MessageParam[]) => {
      const m = await api.messages.stream({ model: MODEL, max_tokens: 1024, messages }).finalMessage();
      return m.content.map((b) => (b.type === 'text' ? b.text : b.type === 'tool_use' ? b.name : b.type));
    };
    const long: MessageParam[] = [
      { role: 'user', content: 'a' },
      { role: 'assistant', content: 'b' },
      { role: 'user', content: 'c' },
    ];
    server.enqueue({ kind: 'tool_use', name: 'next_task', input: {} });
    expect(await answer(long)).toEqual(['next_task']);
    expect(await answer(long)).toEqual(['from the script']);
    expect(await answer([{ role: 'user', content: 'add task: x' }])).toEqual(['Adding that task.', 'create_task']);

    server.enqueue({ kind: 'text', text: 'queued' });
    server.setScript(undefined);
    expect(await answer(long)).toEqual([expect.stringContaining('offline model')]);
  });

  it('records each request; waitForRequest finds one already received or still to come', async () => {
    await client().messages.stream(params('first')).finalMessage();
    const later = server.waitForRequest((r) => JSON.stringify(r.body).includes('second'));
    expect((await server.waitForRequest((r) => JSON.stringify(r.body).includes('first'))).id).toBe(1);
    await client().messages.stream(params('second')).finalMessage();
    expect(await later).toMatchObject({ id: 2, completed: true, params: { model: MODEL, messages: [{ role: 'user', content: 'second' }] } });
    await expect(server.waitForRequest((r) => r.id === 3, 50)).rejects.toThrow(/no matching request/);
  });

  it('keeps only the latest maxRecordedRequests', async () => {
    await server.close();
    await start({ maxRecordedRequests: 2 });
    for (const text of ['a', 'b', 'c']) await client().messages.stream(params(text)).finalMessage();
    expect(server.requests.map((r) => r.id)).toEqual([2, 3]);
  });
});

describe('stop reasons (CHAT-13, CHAT-14)', () => {
  const text = (m: Anthropic.Message) => m.content.map((b) => (b.type === 'text' ? b.text : '')).join('');

  it('stops an answer longer than max_tokens there, with stop_reason max_tokens and that many output tokens', async () => {
    server.enqueue({ kind: 'text', text: 'x'.repeat(100), chunkSize: 7 });
    const message = await client().messages.stream(params('hi', { max_tokens: 5 })).finalMessage();
    expect(text(message)).toBe('x'.repeat(20));
    expect(message.stop_reason).toBe('max_tokens');
    expect(message.usage.output_tokens).toBe(5);
  });

  it('leaves out a tool call that does not fit max_tokens whole', async () => {
    server.enqueue({ kind: 'tool_use', name: 'create_task', input: { title: 'a fairly long task title' }, text: 'On it.' });
    const message = await client().messages.stream(params('hi', { max_tokens: 4 })).finalMessage();
    expect(message.content).toEqual([{ type: 'text', text: 'On it.' }]);
    expect(message.stop_reason).toBe('max_tokens');
  });

  it('answers a prompt longer than the context window with the API\'s 400 "prompt is too long"', async () => {
    await server.close();
    await start({ contextWindowTokens: 50 });
    const error = await client().messages.stream(params('y'.repeat(400))).finalMessage().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({ status: 400, type: 'invalid_request_error' });
    expect((error as APIError).apiMessage).toMatch(/^prompt is too long: \d+ tokens > 50 maximum$/);
  });

  it('stops an answer that would overflow the context window at its edge: model_context_window_exceeded', async () => {
    server.enqueue({ kind: 'text', text: 'z'.repeat(400), contextWindow: 60 });
    const message = await client().messages.stream(params('hello')).finalMessage();
    expect(message.stop_reason).toBe('model_context_window_exceeded');
    const room = 60 - message.usage.input_tokens;
    expect(message.usage.output_tokens).toBe(room);
    expect(text(message)).toBe('z'.repeat(room * 4));
  });

  it('ends a scripted answer as it says: refusal, pause_turn, stop_sequence', async () => {
    for (const stopReason of ['refusal', 'pause_turn', 'stop_sequence'] as const) {
      server.enqueue({ kind: 'text', text: 'Partial', stopReason });
      const message = await client().messages.stream(params('hi')).finalMessage();
      expect(message.stop_reason).toBe(stopReason);
      expect(text(message)).toBe('Partial');
    }
  });

  it('gives a request that ends with an assistant turn only what follows that turn', async () => {
    server.enqueue({ kind: 'text', text: 'Once upon a time, the end.' });
    const messages: MessageParam[] = [
      { role: 'user', content: 'a story' },
      { role: 'assistant', content: 'Once upon a time' },
    ];
    const message = await client().messages.stream({ model: MODEL, max_tokens: 1024, messages }).finalMessage();
    expect(text(message)).toBe(', the end.');
  });

  it('refuses the API\'s refusal test prompt, and writes a long story past max_tokens that a continuation finishes', async () => {
    const refused = await client().messages.stream(params(`Please ${REFUSAL_TEST_PROMPT}`)).finalMessage();
    expect(refused.stop_reason).toBe('refusal');
    expect(refused.content).toEqual([]);

    const api = client();
    const first = await api.messages.stream(params('Write a long story.', { max_tokens: 2048 })).finalMessage();
    expect(first.stop_reason).toBe('max_tokens');
    const part = text(first);
    expect(part).toBe(LONG_STORY.slice(0, 2048 * 4));
    const messages: MessageParam[] = [
      { role: 'user', content: 'Write a long story.' },
      { role: 'assistant', content: part.trimEnd() },
    ];
    const rest = await api.messages.stream({ model: MODEL, max_tokens: 2048, messages }).finalMessage();
    expect(rest.stop_reason).toBe('end_turn');
    expect(part.trimEnd() + text(rest)).toBe(LONG_STORY);
  });

  it('pauses "research <topic>" once (pause_turn), and goes on when the paused turn is sent back', async () => {
    const api = client();
    const first = await api.messages.stream(params('research tide tables')).finalMessage();
    expect(first.stop_reason).toBe('pause_turn');
    const messages: MessageParam[] = [
      { role: 'user', content: 'research tide tables' },
      { role: 'assistant', content: first.content },
    ];
    const rest = await api.messages.stream({ model: MODEL, max_tokens: 1024, messages }).finalMessage();
    expect(rest.stop_reason).toBe('end_turn');
    expect(text(first)).toMatch(/^Looking into tide tables, part 1 of 2/);
    expect(text(rest)).toMatch(/^\n\nPart 2 of 2: .*tide tables/);
  });
});

describe('the simulated prompt cache (CHAT-12)', () => {
  const system = (text: string): Anthropic.TextBlockParam[] => [{ type: 'text', text, cache_control: { type: 'ephemeral' } }];

  it('writes a prefix up to a cache_control breakpoint, then reads it while it is the same byte for byte', async () => {
    await server.close();
    await start({ promptCache: { minTokens: 10 } });
    const api = client();
    const stable = 'You are Sam. '.repeat(20);
    const first = await api.messages.stream(params('one', { system: system(stable) })).finalMessage();
    expect(first.usage.cache_read_input_tokens).toBe(0);
    expect(first.usage.cache_creation_input_tokens).toBeGreaterThan(10);
    const second = await api.messages.stream(params('two, a longer question', { system: system(stable) })).finalMessage();
    expect(second.usage.cache_read_input_tokens).toBe(first.usage.cache_creation_input_tokens);
    expect(second.usage.cache_creation_input_tokens).toBe(0);
    expect(second.usage.input_tokens).toBeGreaterThan(0);
    const changed = await api.messages.stream(params('two', { system: system(`${stable}!`) })).finalMessage();
    expect(changed.usage.cache_read_input_tokens).toBe(0);
    // Without a breakpoint nothing is cached.
    const plain = await api.messages.stream(params('three', { system: stable })).finalMessage();
    expect(plain.usage).toMatchObject({ cache_read_input_tokens: 0, cache_creation_input_tokens: 0 });
  });

  it('caches up to the last block with a top-level cache_control, and never a prefix shorter than minTokens', async () => {
    const api = client();
    const long = 'word '.repeat(1200);
    const auto = { model: MODEL, max_tokens: 64, messages: [{ role: 'user' as const, content: long }], cache_control: { type: 'ephemeral' as const } };
    const first = await api.messages.stream(auto as Anthropic.MessageCreateParamsStreaming).finalMessage();
    expect(first.usage.cache_creation_input_tokens).toBeGreaterThanOrEqual(1024);
    const second = await api.messages.stream(auto as Anthropic.MessageCreateParamsStreaming).finalMessage();
    expect(second.usage.cache_read_input_tokens).toBe(first.usage.cache_creation_input_tokens);
    const short = await api.messages.stream(params('short', { system: system('tiny') })).finalMessage();
    expect(short.usage).toMatchObject({ cache_read_input_tokens: 0, cache_creation_input_tokens: 0 });
  });

  it('reports a scripted answer\'s cache counts instead, out of its input tokens', async () => {
    server.enqueue({ kind: 'text', text: 'ok', cache: { readTokens: 3, creationTokens: 2 } });
    const message = await client().messages.stream(params('x'.repeat(100))).finalMessage();
    expect(message.usage).toMatchObject({ cache_read_input_tokens: 3, cache_creation_input_tokens: 2 });
    expect(message.usage.input_tokens).toBeGreaterThan(0);
  });
});
