import { randomUUID } from 'node:crypto';
import Anthropic, {
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  AuthenticationError,
  InternalServerError,
} from '@anthropic-ai/sdk';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createAnthropicCompatibleServer,
  findTask,
  parseCommand,
  parseTaskLines,
  type AnthropicCompatibleServer,
  type OfflineModelLogger,
} from './offline-model.js';

type MessageParam = Anthropic.MessageParam;
type ClientOptions = NonNullable<ConstructorParameters<typeof Anthropic>[0]>;

const MODEL = 'claude-offline-test';
const TASK_ID = randomUUID();
const OTHER_ID = randomUUID();
const SYSTEM = [
  'You are Sam, a personal assistant.',
  'Open tasks:',
  `- [${OTHER_ID}] buy milk and eggs — due 2030-01-02`,
  `- [${TASK_ID}] buy milk`,
  `- [${randomUUID()}] "call \\"Mom\\""`,
].join('\n');

// The pino logger the server passes must fit the offline model's logger type.
const silentPino: OfflineModelLogger = pino({ level: 'silent' });

let server: AnthropicCompatibleServer;
let warnings: object[];

beforeEach(async () => {
  warnings = [];
  server = await createAnthropicCompatibleServer({
    deltaDelayMs: 0,
    logger: { info: (o, m) => silentPino.info(o, m), warn: (o) => void warnings.push(o) },
  });
});

afterEach(async () => {
  await server.close();
});

function client(options: ClientOptions = {}): Anthropic {
  return new Anthropic({ apiKey: randomUUID(), baseURL: server.url, maxRetries: 0, ...options });
}

function params(content: string, extra: Partial<Anthropic.MessageCreateParamsNonStreaming> = {}) {
  return { model: MODEL, max_tokens: 1024, messages: [{ role: 'user' as const, content }], ...extra };
}

interface WireEvent {
  event: string;
  data: { type: string; [key: string]: unknown };
}

/** Posts directly and splits the SSE body into events, pings included. */
async function rawSse(body: object, headers: Record<string, string> = { 'x-api-key': randomUUID() }): Promise<WireEvent[]> {
  const response = await fetch(`${server.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ ...body, stream: true }),
  });
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

    const deltas = Math.ceil(text.length / 5);
    expect(seen).toEqual([
      'message_start',
      'content_block_start',
      ...Array<string>(deltas).fill('content_block_delta'),
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

  it('speaks the wire format exactly: event names match data types, pings, one message', async () => {
    server.enqueue({ kind: 'text', text: 'one two three four five' });
    const events = await rawSse(params('hi'));
    for (const e of events) expect(e.data.type).toBe(e.event);
    const names = events.map((e) => e.event).filter((n) => n !== 'ping');
    expect(names[0]).toBe('message_start');
    expect(names.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    expect(events.some((e) => e.event === 'ping')).toBe(true);

    expect(events[0]?.data['message']).toMatchObject({
      type: 'message',
      role: 'assistant',
      model: MODEL,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: expect.any(Number), output_tokens: expect.any(Number) },
    });
    const words = events
      .filter((e) => e.event === 'content_block_delta')
      .map((e) => (e.data['delta'] as { type: string; text: string }).text);
    expect(words).toEqual(['one ', 'two ', 'three ', 'four ', 'five']);
    const delta = events.find((e) => e.event === 'message_delta')?.data;
    expect(delta).toEqual({
      type: 'message_delta',
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { output_tokens: 6 },
    });
  });

  it('iterates the raw SDK event stream with stream: true', async () => {
    server.enqueue({ kind: 'text', text: 'raw events work' });
    const stream = await client().messages.create({ ...params('hi'), stream: true });
    const types: string[] = [];
    let text = '';
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
    }
    expect(text).toBe('raw events work');
    expect(types.at(0)).toBe('message_start');
    expect(types.at(-1)).toBe('message_stop');
  });

  it('reflects message_delta usage in the final message', async () => {
    const text = 'x'.repeat(40);
    server.enqueue({ kind: 'text', text });
    const events = await rawSse(params('hi'));
    const deltaUsage = events.find((e) => e.event === 'message_delta')?.data['usage'];
    expect(events[0]?.data['message']).toMatchObject({ usage: { output_tokens: 1 } });
    expect(deltaUsage).toEqual({ output_tokens: 10 });

    server.enqueue({ kind: 'text', text, usage: { inputTokens: 7, outputTokens: 42 } });
    const message = await client().messages.stream(params('hi')).finalMessage();
    expect(message.usage.output_tokens).toBe(42);
    expect(message.usage.input_tokens).toBe(7);
  });

  it('paces deltas at a given token rate and records when each was written', async () => {
    const seen: number[] = [];
    await server.close();
    server = await createAnthropicCompatibleServer({ deltaDelayMs: 0, onDelta: (_id, d) => seen.push(d.at) });
    server.enqueue({ kind: 'text', text: 'abcd'.repeat(10), tokensPerSecond: 50 });
    const message = await client().messages.stream(params('hi')).finalMessage();
    expect(message.content).toEqual([{ type: 'text', text: 'abcd'.repeat(10) }]);

    const [request] = server.requests;
    const times = request?.deltas.map((d) => d.at) ?? [];
    expect(times).toHaveLength(10);
    expect(seen).toEqual(times);
    const span = (times.at(-1) ?? 0) - (times[0] ?? 0);
    // 10 deltas at 50/s: 9 intervals of 20 ms on a fixed schedule
    expect(span).toBeGreaterThanOrEqual(170);
    expect(span).toBeLessThan(1000);
    expect(request?.completed).toBe(true);
  });

  it('answers other text with a deterministic friendly markdown reply in many chunks', async () => {
    const ask = 'Can you plan my week?';
    const first = await client().messages.stream(params(ask)).finalMessage();
    const second = await client().messages.stream(params(ask)).finalMessage();
    const block = first.content[0];
    expect(block?.type).toBe('text');
    const text = block?.type === 'text' ? block.text : '';
    expect(second.content).toEqual(first.content);
    expect(text).toContain(ask);
    expect(text).toMatch(/offline model/);
    expect(text).toMatch(/^- /m);
    expect(text.split(/\s+/).length).toBeGreaterThanOrEqual(30);
    expect(server.requests[0]?.deltas.length).toBeGreaterThan(10);
    expect(first.stop_reason).toBe('end_turn');
  });
});

describe('tool calls from plain commands', () => {
  it('turns "add task: buy milk" into a create_task tool_use streamed as input_json_delta', async () => {
    const stream = client().messages.stream(params('add task: buy milk'));
    const jsonChunks: string[] = [];
    stream.on('inputJson', (partial) => jsonChunks.push(partial));
    const message = await stream.finalMessage();

    expect(message.stop_reason).toBe('tool_use');
    const toolUse = message.content.find((b) => b.type === 'tool_use');
    expect(toolUse).toMatchObject({ type: 'tool_use', name: 'create_task', input: { title: 'buy milk' } });
    expect(toolUse?.type === 'tool_use' && toolUse.id).toMatch(/^toolu_/);
    expect(message.content[0]).toMatchObject({ type: 'text' });

    const jsonDeltas = server.requests[0]?.deltas.filter((d) => d.type === 'input_json_delta') ?? [];
    expect(jsonDeltas.length).toBeGreaterThan(1);
    expect(jsonDeltas.map((d) => d.text).join('')).toBe('{"title":"buy milk"}');
    expect(jsonChunks.length).toBeGreaterThan(0);
  });

  it('sends the tool_use block start with empty input, as the API does', async () => {
    const events = await rawSse(params('add task: buy milk'));
    const starts = events.filter((e) => e.event === 'content_block_start').map((e) => e.data['content_block']);
    expect(starts).toEqual([
      { type: 'text', text: '' },
      { type: 'tool_use', id: expect.stringMatching(/^toolu_/), name: 'create_task', input: {} },
    ]);
    const delta = events.find((e) => e.event === 'message_delta')?.data['delta'];
    expect(delta).toEqual({ stop_reason: 'tool_use', stop_sequence: null });
  });

  it('completes a task by the id listed in the system prompt', async () => {
    const message = await client().messages.stream(params('complete buy milk', { system: SYSTEM })).finalMessage();
    const toolUse = message.content.find((b) => b.type === 'tool_use');
    expect(toolUse).toMatchObject({ name: 'complete_task', input: { id: TASK_ID } });
    expect(message.stop_reason).toBe('tool_use');
  });

  it('deletes by a case-insensitive substring and reads system prompts given as blocks', async () => {
    const system = [{ type: 'text' as const, text: SYSTEM }];
    const message = await client().messages.create(params('Delete MILK AND', { system }));
    const toolUse = message.content.find((b) => b.type === 'tool_use');
    expect(toolUse).toMatchObject({ name: 'delete_task', input: { id: OTHER_ID } });
  });

  it('says so when no listed task matches', async () => {
    const message = await client().messages.stream(params('done walk the dog', { system: SYSTEM })).finalMessage();
    expect(message.stop_reason).toBe('end_turn');
    expect(message.content).toEqual([{ type: 'text', text: expect.stringContaining('"walk the dog"') }]);
  });

  it('maps next and list commands to next_task and list_tasks', async () => {
    const api = client();
    const next = await api.messages.create(params('What should I do next?'));
    expect(next.content.find((b) => b.type === 'tool_use')).toMatchObject({ name: 'next_task', input: {} });
    const list = await api.messages.create(params('list my tasks'));
    expect(list.content.find((b) => b.type === 'tool_use')).toMatchObject({ name: 'list_tasks', input: {} });
  });

  it('answers a tool_result turn with a text summary and end_turn', async () => {
    const api = client();
    const first = await api.messages.stream(params('add task: buy milk')).finalMessage();
    const toolUse = first.content.find((b) => b.type === 'tool_use');
    if (toolUse?.type !== 'tool_use') throw new Error('expected a tool_use block');
    const messages: MessageParam[] = [
      { role: 'user', content: 'add task: buy milk' },
      { role: 'assistant', content: first.content },
      {
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: toolUse.id, content: JSON.stringify({ id: TASK_ID, title: 'buy milk' }) }],
      },
    ];
    const reply = await api.messages.stream({ model: MODEL, max_tokens: 1024, messages }).finalMessage();
    expect(reply.stop_reason).toBe('end_turn');
    expect(reply.content).toEqual([{ type: 'text', text: 'Done — created "buy milk".' }]);
  });

  it('summarises list, next and failed tool results', async () => {
    const listId = 'toolu_list';
    const nextId = 'toolu_next';
    const failId = 'toolu_fail';
    const messages: MessageParam[] = [
      { role: 'user', content: 'list my tasks' },
      {
        role: 'assistant',
        content: [
          { type: 'tool_use', id: listId, name: 'list_tasks', input: {} },
          { type: 'tool_use', id: nextId, name: 'next_task', input: {} },
          { type: 'tool_use', id: failId, name: 'complete_task', input: { id: 'nope' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: listId, content: JSON.stringify({ tasks: [{ title: 'a' }, { title: 'b' }] }) },
          { type: 'tool_result', tool_use_id: nextId, content: [{ type: 'text', text: JSON.stringify({ task: { title: 'b' } }) }] },
          { type: 'tool_result', tool_use_id: failId, is_error: true, content: JSON.stringify({ error: { message: 'Task not found' } }) },
        ],
      },
    ];
    const reply = await client().messages.create({ model: MODEL, max_tokens: 1024, messages });
    const text = reply.content[0]?.type === 'text' ? reply.content[0].text : '';
    expect(text).toBe("Here are your 2 tasks:\n\n- a\n- b\n\nI'd do **b** next.\n\nThat didn't work: Task not found.");
  });
});

describe('command grammar', () => {
  it.each([
    ['add task: buy milk', { tool: 'create_task', title: 'buy milk' }],
    ['Add task Buy Milk.', { tool: 'create_task', title: 'Buy Milk' }],
    ['create task: file taxes by 2030-04-15', { tool: 'create_task', title: 'file taxes', deadline: '2030-04-15' }],
    ['remind me to call mom', { tool: 'create_task', title: 'call mom' }],
    ['complete "buy milk"', { tool: 'complete_task', title: 'buy milk' }],
    ['finish the task: report', { tool: 'complete_task', title: 'report' }],
    ['mark report as done', { tool: 'complete_task', title: 'report' }],
    ['delete buy milk', { tool: 'delete_task', title: 'buy milk' }],
    ['what next', { tool: 'next_task' }],
    ['next task', { tool: 'next_task' }],
    ["what's next?", { tool: 'next_task' }],
    ['next light task', { tool: 'next_task', intensity: 'light' }],
    ['show my tasks', { tool: 'list_tasks' }],
    ['list completed tasks', { tool: 'list_tasks', view: 'completed' }],
    ['tell me a joke', undefined],
  ])('%s', (text, expected) => {
    expect(parseCommand(text)).toEqual(expected);
  });

  it('reads task lines from the system prompt', () => {
    const tasks = parseTaskLines(SYSTEM);
    expect(tasks.map((t) => t.title)).toEqual(['buy milk and eggs', 'buy milk', 'call "Mom"']);
    expect(findTask(tasks, 'buy milk')?.id).toBe(TASK_ID);
    expect(findTask(tasks, 'BUY MILK')?.id).toBe(TASK_ID);
    expect(findTask(tasks, 'eggs')?.id).toBe(OTHER_ID);
    expect(findTask(tasks, 'walk')).toBeUndefined();
  });
});

describe('scripted failures', () => {
  it('surfaces a scripted 529 as the SDK APIError with the Anthropic body', async () => {
    server.enqueue({ kind: 'error', status: 529, errorType: 'overloaded_error', message: 'Overloaded' });
    const error = await client().messages.stream(params('hi')).finalMessage().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIError);
    expect(error).toMatchObject({ status: 529, type: 'overloaded_error', apiMessage: 'Overloaded' });
    expect((error as APIError).error).toMatchObject({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
  });

  it('surfaces a scripted 500 api_error on a non-streaming request', async () => {
    server.enqueue({ kind: 'error', status: 500, errorType: 'api_error' });
    const error = await client().messages.create(params('hi')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InternalServerError);
    expect(error).toMatchObject({ status: 500, type: 'api_error' });
  });

  it('rejects the SDK stream when the socket is cut mid-stream', async () => {
    server.enqueue({ kind: 'cut', text: 'abcdefghijklmnopqrstuvwxyz', chunkSize: 4, afterChunks: 3 });
    const stream = client().messages.stream(params('hi'));
    let received = '';
    stream.on('text', (t) => (received += t));
    await expect(stream.finalMessage()).rejects.toThrow();
    const [request] = server.requests;
    expect(request?.deltas.map((d) => d.text)).toEqual(['abcd', 'efgh', 'ijkl']);
    expect(received).toBe('abcdefghijkl');
    await server.waitForEnd(request?.id ?? 0);
    expect(request).toMatchObject({ aborted: false, completed: false, status: 200 });
  });

  it('rejects the SDK stream on a mid-stream error event', async () => {
    server.enqueue({ kind: 'stream_error', text: 'partial answer', afterChunks: 1, errorType: 'overloaded_error' });
    const error = await client().messages.stream(params('hi')).finalMessage().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIError);
    expect(error).toMatchObject({ type: 'overloaded_error' });
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
    const ended = await server.waitForAbort(request.id);
    expect(ended).toMatchObject({ aborted: true, completed: false });
    expect(ended.deltas).toHaveLength(2);
  });

  it('lets the SDK timeout abort a stall that never sends headers', async () => {
    server.enqueue({ kind: 'stall', sendHeaders: false });
    const error = await client({ timeout: 200 }).messages.create(params('hi')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIConnectionTimeoutError);
    const request = await server.waitForRequest();
    expect((await server.waitForAbort(request.id)).aborted).toBe(true);
  });

  it('ends open connections on close so nothing hangs', async () => {
    server.enqueue({ kind: 'stall', text: 'never finishes' });
    const outcome = client().messages.stream(params('hi')).finalMessage().catch((e: unknown) => e);
    const request = await server.waitForRequest();
    await server.close();
    expect(await outcome).toBeInstanceOf(Error);
    expect(request.completed).toBe(false);
  });
});

describe('keys and validation', () => {
  it('accepts the key as x-api-key', async () => {
    const key = randomUUID();
    const api = client({ defaultHeaders: { 'x-api-key': key, Authorization: null } });
    await api.messages.create(params('hi'));
    const [request] = server.requests;
    expect(request?.headers['x-api-key']).toBe(key);
    expect(request?.headers.authorization).toBeUndefined();
  });

  it('accepts the key as Authorization: Bearer', async () => {
    const token = randomUUID();
    await client({ apiKey: null, authToken: token }).messages.create(params('hi'));
    expect(server.requests[0]?.headers.authorization).toBe(`Bearer ${token}`);
  });

  it('answers 401 authentication_error without a key', async () => {
    const api = client({ defaultHeaders: { Authorization: null } });
    const error = await api.messages.create(params('hi')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error).toMatchObject({ status: 401, type: 'authentication_error' });
    expect(warnings).toHaveLength(1);
  });

  it('accepts only the configured key when one is set', async () => {
    const key = randomUUID();
    await server.close();
    server = await createAnthropicCompatibleServer({ apiKey: key, deltaDelayMs: 0 });
    await expect(client().messages.create(params('hi'))).rejects.toBeInstanceOf(AuthenticationError);
    await expect(client({ apiKey: key }).messages.create(params('hi'))).resolves.toMatchObject({ type: 'message' });
  });

  it('rejects bodies the API would reject with 400 invalid_request_error', async () => {
    const post = (body: string) =>
      fetch(`${server.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': randomUUID() },
        body,
      });
    for (const body of ['not json', JSON.stringify({ model: MODEL, messages: [] }), JSON.stringify({ max_tokens: 5, messages: [] })]) {
      const response = await post(body);
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    }
    expect(server.requests.map((r) => r.status)).toEqual([400, 400, 400]);
  });

  it('answers unknown routes with not_found_error', async () => {
    const response = await fetch(`${server.url}/v1/nothing`, { headers: { 'x-api-key': randomUUID() } });
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
  });
});

describe('non-streaming and scripting', () => {
  it('returns a complete Message JSON when stream is not set', async () => {
    const { data: message, response, request_id } = await client().messages.create(params('add task: buy milk')).withResponse();
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(message).toMatchObject({
      id: expect.stringMatching(/^msg_/),
      type: 'message',
      role: 'assistant',
      model: MODEL,
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: { input_tokens: expect.any(Number), output_tokens: expect.any(Number) },
    });
    expect(message.content).toEqual([
      { type: 'text', text: 'Adding that task.' },
      { type: 'tool_use', id: expect.stringMatching(/^toolu_/), name: 'create_task', input: { title: 'buy milk' } },
    ]);
    expect(request_id).toMatch(/^req_/);
  });

  it('records each request and lets a script function decide, falling back to the default', async () => {
    server.setScript((req) =>
      req.params.messages.length > 1 ? { kind: 'tool_use', name: 'next_task', input: { intensity: 'light' } } : undefined,
    );
    const api = client();
    const pending = server.waitForRequest((r) => r.path === '/v1/messages');
    const plain = await api.messages.create(params('add task: x'));
    expect(plain.content.find((b) => b.type === 'tool_use')).toMatchObject({ name: 'create_task' });
    const recorded = await pending;
    expect(recorded.body).toMatchObject({ model: MODEL, max_tokens: 1024, messages: [{ role: 'user', content: 'add task: x' }] });
    expect(recorded.completed).toBe(true);

    const messages: MessageParam[] = [
      { role: 'user', content: 'a' },
      { role: 'assistant', content: 'b' },
      { role: 'user', content: 'c' },
    ];
    const scripted = await api.messages.stream({ model: MODEL, max_tokens: 10, messages }).finalMessage();
    expect(scripted.content).toEqual([{ type: 'tool_use', id: expect.any(String), name: 'next_task', input: { intensity: 'light' } }]);
    expect((await server.waitForRequest()).id).toBe(2);
  });

  it('serves queued responses first, mixing blocks', async () => {
    server.enqueue({
      kind: 'blocks',
      stopReason: 'tool_use',
      blocks: [
        { type: 'text', text: 'Two things.' },
        { type: 'tool_use', name: 'create_task', input: { title: 'a', intensity: 2 } },
        { type: 'tool_use', name: 'create_task', input: { title: 'b' } },
      ],
    });
    const message = await client().messages.stream(params('hi')).finalMessage();
    expect(message.content.map((b) => (b.type === 'tool_use' ? b.input : b.type))).toEqual([
      'text',
      { title: 'a', intensity: 2 },
      { title: 'b' },
    ]);
  });
});
