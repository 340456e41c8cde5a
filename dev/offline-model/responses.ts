/**
 * What the offline model can be scripted to answer, and how an answer goes on
 * the wire: server-sent events in the Messages API's order, paced deltas, and
 * the failures tests need (an HTTP error, a cut socket, a stalled stream).
 *
 * Every answer keeps to the request as the API does: one longer than
 * `max_tokens` stops there (`max_tokens`), one that would overflow the context
 * window stops at its edge (`model_context_window_exceeded`), and a request
 * that ends with an assistant turn (a prefill, a paused or cut-off answer sent
 * back) gets only what follows that turn's text.
 */
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { assistantPrefill, type MessagesParams } from './replies.js';
import { CHARS_PER_TOKEN, tokensOf, type InputUsage } from './prompt-cache.js';

export type AnthropicErrorType = 'invalid_request_error' | 'not_found_error' | 'api_error' | 'overloaded_error';

/** Pacing of streamed deltas. */
export interface ScriptedPacing {
  /** characters per text delta; default one word per delta */
  chunkSize?: number;
  /** pause between deltas, on a fixed schedule from the first; default the server's `deltaDelayMs` */
  delayMs?: number;
}

/** How a scripted answer ends when the request's limits (max_tokens, the context window) do not stop it first. */
export type ScriptedStop = 'end_turn' | 'stop_sequence' | 'pause_turn' | 'refusal';

/** What a complete scripted answer may say about its limits and its usage. */
export interface ScriptedLimits {
  /** the model's context window for this answer, in tokens; default the server's `contextWindowTokens` */
  contextWindow?: number;
  /** cache counts to report instead of the simulated prompt cache's (they come out of the input tokens) */
  cache?: { readTokens: number; creationTokens: number };
}

export interface ScriptedText extends ScriptedPacing, ScriptedLimits {
  kind: 'text';
  text: string;
  /** default end_turn */
  stopReason?: ScriptedStop;
}
export interface ScriptedToolUse extends ScriptedPacing, ScriptedLimits {
  kind: 'tool_use';
  name: string;
  input: Record<string, unknown>;
  /** a short text block streamed before the tool_use block, as Claude often does */
  text?: string;
}
/** An HTTP error before any streaming, e.g. 529 overloaded_error or 500 api_error. */
export interface ScriptedError {
  kind: 'error';
  status: number;
  errorType: AnthropicErrorType;
}
/** Streams `afterChunks` deltas (default half of them), then destroys the socket: no message_stop. */
export interface ScriptedCut extends ScriptedPacing {
  kind: 'cut';
  text: string;
  afterChunks?: number;
}
/** Streams `afterChunks` deltas (default all of `text`), then nothing at all until the client goes away. */
export interface ScriptedStall extends ScriptedPacing {
  kind: 'stall';
  text: string;
  afterChunks?: number;
}

export type ScriptedResponse = ScriptedText | ScriptedToolUse | ScriptedError | ScriptedCut | ScriptedStall;
/** A response with a body to stream: every scripted one but an HTTP error, and the default replies. */
export type ScriptedBody = Exclude<ScriptedResponse, ScriptedError>;

export interface DeltaWrite {
  /** wall-clock epoch milliseconds (sub-millisecond precision) just before the write */
  at: number;
  /** content block index */
  index: number;
  type: 'text_delta' | 'input_json_delta';
  /** the text, or the partial_json chunk */
  text: string;
}

/** One response in flight: its abort signal stops every timer and write. */
export interface Exchange {
  res: ServerResponse;
  signal: AbortSignal;
  onDelta(delta: DeltaWrite): void;
  /** destroys the socket on purpose (not a client abort) */
  cut(): void;
}

// Plans: every scripted or default answer becomes one of these.

type OutBlock =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };

type Ending = { kind: 'complete' } | { kind: 'cut' | 'stall'; afterChunks: number };

/** The Messages API's stop reasons. */
export type StopReason = ScriptedStop | 'tool_use' | 'max_tokens' | 'model_context_window_exceeded';

interface Plan {
  blocks: OutBlock[];
  stopReason: StopReason;
  usage: InputUsage;
  outputTokens: number;
  intervalMs: number;
  /** null: one word per text delta */
  chunkChars: number | null;
  ending: Ending;
}

const JSON_CHUNK_CHARS = 12;

/** What the request allows an answer: the pacing by default, its context window, and its input usage. */
export interface PlanLimits {
  delayMs: number;
  contextWindow: number;
  usage: InputUsage;
}

const outputText = (blocks: readonly OutBlock[]) => blocks.map((b) => (b.type === 'text' ? b.text : b.name + JSON.stringify(b.input))).join('');

/** The blocks that fit `tokens` output tokens, or undefined when they all do; a tool call that does not fit whole is left out. */
function cutTo(blocks: readonly OutBlock[], tokens: number): OutBlock[] | undefined {
  if (tokensOf(outputText(blocks).length) <= tokens) return undefined;
  let room = Math.max(0, tokens) * CHARS_PER_TOKEN;
  const kept: OutBlock[] = [];
  for (const block of blocks) {
    if (block.type === 'tool_use') {
      const cost = block.name.length + JSON.stringify(block.input).length;
      if (cost > room) break;
      kept.push(block);
      room -= cost;
      continue;
    }
    const points = Array.from(block.text);
    if (points.length <= room) {
      kept.push(block);
      room -= points.length;
      continue;
    }
    if (room > 0) kept.push({ type: 'text', text: points.slice(0, room).join('') });
    break;
  }
  return kept;
}

export function planOf(response: ScriptedBody, params: MessagesParams, limits: PlanLimits): Plan {
  // A request that ends with an assistant turn gets what follows it.
  const prefill = assistantPrefill(params);
  const said = prefill && response.text?.startsWith(prefill) ? response.text.slice(prefill.length) : response.text;
  const text: OutBlock[] = said ? [{ type: 'text', text: said }] : [];
  const blocks: OutBlock[] =
    response.kind === 'tool_use' ? [...text, { type: 'tool_use', id: randomId('toolu_'), name: response.name, input: response.input }] : text;
  const plan: Plan = {
    blocks,
    stopReason: response.kind === 'tool_use' ? 'tool_use' : response.kind === 'text' ? (response.stopReason ?? 'end_turn') : 'end_turn',
    usage: limits.usage,
    outputTokens: tokensOf(outputText(blocks).length),
    intervalMs: Math.max(0, response.delayMs ?? limits.delayMs),
    chunkChars: response.chunkSize !== undefined && response.chunkSize >= 1 ? Math.floor(response.chunkSize) : null,
    ending: { kind: 'complete' },
  };
  if (response.kind === 'cut' || response.kind === 'stall') {
    const total = blocks.reduce((n, b) => n + deltasOf(b, plan.chunkChars).length, 0);
    const fallback = response.kind === 'cut' ? Math.floor(total / 2) : total;
    plan.ending = { kind: response.kind, afterChunks: Math.max(0, Math.min(response.afterChunks ?? fallback, total)) };
    return plan;
  }
  const { usage } = limits;
  const windowLeft = limits.contextWindow - (usage.inputTokens + usage.cacheReadTokens + usage.cacheCreationTokens);
  const room = Math.min(params.max_tokens, windowLeft);
  const cut = cutTo(blocks, room);
  if (cut) {
    plan.blocks = cut;
    plan.outputTokens = Math.max(0, room);
    plan.stopReason = params.max_tokens <= windowLeft ? 'max_tokens' : 'model_context_window_exceeded';
  }
  return plan;
}

/** Text deltas (words or fixed chunks), or the tool input's JSON in chunks after an empty one, as the API sends. */
function deltasOf(block: OutBlock, chunkChars: number | null): string[] {
  if (block.type === 'text') return chunkChars === null ? (block.text.match(/\S+\s*|\s+/g) ?? []) : chunk(block.text, chunkChars);
  return ['', ...chunk(JSON.stringify(block.input), JSON_CHUNK_CHARS)];
}

/** Splits on code points so no delta holds half a surrogate pair. */
function chunk(text: string, size: number): string[] {
  const points = Array.from(text);
  const parts: string[] = [];
  for (let i = 0; i < points.length; i += size) parts.push(points.slice(i, i + size).join(''));
  return parts;
}

export function randomId(prefix: string): string {
  return `${prefix}01${randomBytes(18).toString('base64url').replace(/[-_]/g, 'x')}`;
}

// Writing responses.

export function defaultErrorMessage(type: AnthropicErrorType): string {
  if (type === 'overloaded_error') return 'Overloaded';
  if (type === 'api_error') return 'Internal server error';
  return type.replace(/_/g, ' ');
}

/** A JSON error body as the API sends it. */
export function sendError(ex: Exchange, status: number, type: AnthropicErrorType, message = defaultErrorMessage(type)): void {
  if (ex.signal.aborted) return;
  ex.res.writeHead(status, { 'content-type': 'application/json' });
  ex.res.end(JSON.stringify({ type: 'error', error: { type, message } }));
}

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(ok);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** Resolves true once the event is handed to the socket, false if the exchange ended first. */
function sse(ex: Exchange, type: string, data: object): Promise<boolean> {
  if (ex.signal.aborted || ex.res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => resolve(false);
    ex.signal.addEventListener('abort', onAbort, { once: true });
    ex.res.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`, (err) => {
      ex.signal.removeEventListener('abort', onAbort);
      resolve(!err);
    });
  });
}

type Outcome = 'done' | 'interrupted' | 'gone';

export async function streamPlan(ex: Exchange, plan: Plan, model: string): Promise<void> {
  ex.res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  ex.res.flushHeaders();
  const message = {
    id: randomId('msg_'),
    type: 'message',
    role: 'assistant',
    model,
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage: {
      input_tokens: plan.usage.inputTokens,
      cache_creation_input_tokens: plan.usage.cacheCreationTokens,
      cache_read_input_tokens: plan.usage.cacheReadTokens,
      output_tokens: 1,
    },
  };
  if (!(await sse(ex, 'message_start', { type: 'message_start', message }))) return;
  const outcome = await streamBlocks(ex, plan);
  if (outcome === 'gone') return;
  if (outcome === 'interrupted') {
    if (plan.ending.kind === 'cut') ex.cut();
    else await untilAborted(ex.signal);
    return;
  }
  const delta = { stop_reason: plan.stopReason, stop_sequence: null };
  if (!(await sse(ex, 'message_delta', { type: 'message_delta', delta, usage: { output_tokens: plan.outputTokens } }))) return;
  if (await sse(ex, 'message_stop', { type: 'message_stop' })) ex.res.end();
}

/** Streams the content blocks until the plan's ending interrupts them (after `afterChunks` deltas). */
async function streamBlocks(ex: Exchange, plan: Plan): Promise<Outcome> {
  const limit = plan.ending.kind === 'complete' ? Infinity : plan.ending.afterChunks;
  // A fixed schedule from the start, so timer drift does not accumulate.
  const start = performance.now();
  let sent = 0;
  for (const [index, block] of plan.blocks.entries()) {
    const content_block = block.type === 'text' ? { type: 'text', text: '' } : { ...block, input: {} };
    if (!(await sse(ex, 'content_block_start', { type: 'content_block_start', index, content_block }))) return 'gone';
    if (index === 0 && !(await sse(ex, 'ping', { type: 'ping' }))) return 'gone';
    for (const piece of deltasOf(block, plan.chunkChars)) {
      if (sent >= limit) return 'interrupted';
      if (!(await sleep(start + sent * plan.intervalMs - performance.now(), ex.signal))) return 'gone';
      if (!(await writeDelta(ex, index, block.type === 'text' ? 'text_delta' : 'input_json_delta', piece))) return 'gone';
      sent += 1;
    }
    if (sent >= limit) return 'interrupted';
    if (!(await sse(ex, 'content_block_stop', { type: 'content_block_stop', index }))) return 'gone';
  }
  return plan.ending.kind === 'complete' ? 'done' : 'interrupted';
}

function writeDelta(ex: Exchange, index: number, type: DeltaWrite['type'], text: string): Promise<boolean> {
  ex.onDelta({ at: performance.timeOrigin + performance.now(), index, type, text });
  const delta = type === 'text_delta' ? { type, text } : { type, partial_json: text };
  return sse(ex, 'content_block_delta', { type: 'content_block_delta', index, delta });
}
