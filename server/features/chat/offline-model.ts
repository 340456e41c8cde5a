/**
 * The embedded offline model (PROTOCOL.md §6.4): an Anthropic-compatible Messages
 * endpoint served from inside the process, so that outside production with no
 * ANTHROPIC_API_KEY the one real SDK code path runs with no network. The same
 * server, scripted, is what the tests and benchmarks talk to.
 *
 * Wire behaviour follows the public Messages API: `POST /v1/messages` (the SDK
 * appends `/v1/messages` to `baseURL`), key as `x-api-key` or
 * `Authorization: Bearer`, JSON or SSE responses in the official event order,
 * and `{"type":"error","error":{"type","message"}}` error bodies.
 */
import { randomBytes } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { intensityClasses, taskViews } from '../../../shared/schemas/tasks.js';

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

export type StopReason = 'end_turn' | 'tool_use' | 'max_tokens' | 'stop_sequence' | 'pause_turn' | 'refusal';

export type AnthropicErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'api_error'
  | 'overloaded_error'
  | 'billing_error'
  | 'timeout_error';

/** Pacing of streamed deltas; every field is optional. */
export interface ScriptedPacing {
  /** characters per delta; default one word per text delta (or 4 chars with tokensPerSecond) */
  chunkSize?: number;
  /** pause between deltas; default the server's `deltaDelayMs` */
  delayMs?: number;
  /** one delta per "token" of chunkSize chars at this rate; overrides delayMs */
  tokensPerSecond?: number;
  /** pause before the first delta (time to first token); default 0 */
  initialDelayMs?: number;
}

export interface ScriptedUsage {
  inputTokens?: number;
  outputTokens?: number;
}

export type ScriptedBlock =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; name: string; input: Record<string, unknown>; id?: string };

export interface ScriptedText extends ScriptedPacing {
  kind: 'text';
  text: string;
  stopReason?: StopReason;
  usage?: ScriptedUsage;
}
export interface ScriptedToolUse extends ScriptedPacing {
  kind: 'tool_use';
  name: string;
  input: Record<string, unknown>;
  /** a short text block streamed before the tool_use block, as Claude often does */
  text?: string;
  id?: string;
  usage?: ScriptedUsage;
}
export interface ScriptedBlocks extends ScriptedPacing {
  kind: 'blocks';
  blocks: ScriptedBlock[];
  stopReason: StopReason;
  usage?: ScriptedUsage;
}
/** An HTTP error before any streaming, e.g. 529 overloaded_error or 500 api_error. */
export interface ScriptedError {
  kind: 'error';
  status: number;
  errorType: AnthropicErrorType;
  message?: string;
  headers?: Record<string, string>;
}
/** Streams `afterChunks` deltas (default half of them), then destroys the socket: no message_stop. */
export interface ScriptedCut extends ScriptedPacing {
  kind: 'cut';
  text: string;
  afterChunks?: number;
}
/**
 * Sends headers (unless `sendHeaders: false`), message_start and `afterChunks` deltas
 * (default all of `text`), then nothing at all until the client goes away.
 */
export interface ScriptedStall extends ScriptedPacing {
  kind: 'stall';
  text?: string;
  afterChunks?: number;
  sendHeaders?: boolean;
}
/** Streams `afterChunks` deltas, then an SSE `error` event and the end of the body, as the API does mid-stream. */
export interface ScriptedStreamError extends ScriptedPacing {
  kind: 'stream_error';
  errorType: AnthropicErrorType;
  message?: string;
  text?: string;
  afterChunks?: number;
}
/** Explicitly answer with the offline model's default behaviour. */
export interface ScriptedDefault {
  kind: 'default';
}

export type ScriptedResponse =
  | ScriptedText
  | ScriptedToolUse
  | ScriptedBlocks
  | ScriptedError
  | ScriptedCut
  | ScriptedStall
  | ScriptedStreamError
  | ScriptedDefault;

/** Returning undefined falls back to the default offline behaviour. */
export type ScriptFunction = (
  req: ValidRecordedRequest,
) => ScriptedResponse | undefined | Promise<ScriptedResponse | undefined>;

/**
 * A function deciding each response, or a queue consumed front first (the array is
 * used live: pushing to it later works). An empty queue falls back to the default.
 */
export type ScriptSource = ScriptFunction | ScriptedResponse[];

export interface DeltaWrite {
  /** wall-clock epoch milliseconds (sub-millisecond precision) just before the write */
  at: number;
  /** content block index */
  index: number;
  type: 'text_delta' | 'input_json_delta';
  /** the text, or the partial_json chunk */
  text: string;
}

export interface RecordedRequest {
  /** 1, 2, 3… per server */
  id: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** the parsed JSON body, or null when it was not JSON */
  body: unknown;
  /** the body once it validated as Messages params, else null */
  params: MessagesParams | null;
  /** epoch milliseconds */
  receivedAt: number;
  /** HTTP status sent, null until headers went out */
  status: number | null;
  /** the client closed the connection before the response ended */
  aborted: boolean;
  /** the response ended normally */
  completed: boolean;
  /** every content_block_delta written, in order */
  deltas: DeltaWrite[];
}

export type ValidRecordedRequest = RecordedRequest & { params: MessagesParams };

export interface OfflineModelLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface OfflineModelOptions {
  script?: ScriptSource;
  logger?: OfflineModelLogger;
  /** when set, only this key is accepted; otherwise any non-empty key is */
  apiKey?: string;
  /** pause between deltas when a response does not say; default 15 ms so the UI visibly streams */
  deltaDelayMs?: number;
  /** called as each delta is written (benchmarks measure what the relay adds from it) */
  onDelta?: (requestId: number, delta: DeltaWrite) => void;
  /** `requests` keeps only the latest ones; default 500 */
  maxRecordedRequests?: number;
}

export interface AnthropicCompatibleServer {
  /** base URL for the SDK (`new Anthropic({ baseURL: url })`), no trailing slash */
  url: string;
  port: number;
  /** the requests received, oldest first (the latest `maxRecordedRequests`) */
  readonly requests: RecordedRequest[];
  /** appends to the response queue (served before the script function and the default) */
  enqueue(...responses: ScriptedResponse[]): void;
  /** replaces the script and the queue; undefined restores the default behaviour */
  setScript(script: ScriptSource | undefined): void;
  /**
   * Resolves with the first request, already received or future, that matches the
   * predicate and that no earlier waitForRequest call returned. Default timeout 5 s.
   */
  waitForRequest(predicate?: (req: RecordedRequest) => boolean, timeoutMs?: number): Promise<RecordedRequest>;
  /** Resolves when that request's response is over, whatever the outcome. Default timeout 5 s. */
  waitForEnd(requestId: number, timeoutMs?: number): Promise<RecordedRequest>;
  /** Resolves when the client aborted that request; rejects if it ended otherwise or on timeout. */
  waitForAbort(requestId: number, timeoutMs?: number): Promise<RecordedRequest>;
  /** Stops pending responses, ends open connections and stops listening. Idempotent. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------
// Request validation
// ---------------------------------------------------------------------------

const contentBlockSchema = z.looseObject({ type: z.string() });
const messagesParamsSchema = z.looseObject({
  model: z.string().min(1),
  max_tokens: z.int().positive(),
  messages: z
    .array(
      z.looseObject({
        role: z.enum(['user', 'assistant']),
        content: z.union([z.string(), z.array(contentBlockSchema)]),
      }),
    )
    .min(1),
  system: z.union([z.string(), z.array(contentBlockSchema)]).optional(),
  stream: z.boolean().optional(),
});
const countTokensSchema = messagesParamsSchema.omit({ max_tokens: true, stream: true });

export type MessagesParams = z.infer<typeof messagesParamsSchema>;
type WireBlock = z.infer<typeof contentBlockSchema>;
type WireMessage = MessagesParams['messages'][number];

// ---------------------------------------------------------------------------
// The default offline model: deterministic, and plain commands become tool calls
// ---------------------------------------------------------------------------

const CHARS_PER_TOKEN = 4;

export interface TaskLine {
  id: string;
  title: string;
}

/**
 * CONTRACT with the server's system-prompt builder: each open task of the user is
 * one line of the system prompt of the form
 *
 *     - [<id>] <title>
 *     - [<id>] "<title>"            (JSON string: any character, incl. newlines, is safe)
 *     - [<id>] <title> — <details>  (details after " — " or " | " are ignored)
 *
 * `<id>` has no whitespace and no `]`. `*` is accepted instead of `-`.
 */
export function parseTaskLines(system: MessagesParams['system']): TaskLine[] {
  const lineRe = /^[ \t]*[-*][ \t]+\[([^\]\s]+)\][ \t]+(.+?)[ \t]*$/gm;
  const tasks: TaskLine[] = [];
  for (const match of systemText(system).matchAll(lineRe)) {
    const [, id, rest] = match;
    if (id === undefined || rest === undefined) continue;
    const title = taskTitleOf(rest);
    if (title) tasks.push({ id, title });
  }
  return tasks;
}

function taskTitleOf(rest: string): string {
  if (rest.startsWith('"')) {
    const quoted = /^"(?:[^"\\]|\\.)*"/.exec(rest)?.[0];
    if (quoted !== undefined) {
      try {
        return String(JSON.parse(quoted)).trim();
      } catch {
        // not a JSON string after all: use the raw text
      }
    }
  }
  return rest.split(/ — | \| /)[0]?.trim() ?? '';
}

/** Exact title, then case-insensitive equality, then the shortest title containing the query. */
export function findTask(tasks: readonly TaskLine[], query: string): TaskLine | undefined {
  const q = query.toLowerCase();
  return (
    tasks.find((t) => t.title === query) ??
    tasks.find((t) => t.title.toLowerCase() === q) ??
    tasks
      .filter((t) => t.title.toLowerCase().includes(q))
      .reduce<TaskLine | undefined>((best, t) => (best && best.title.length <= t.title.length ? best : t), undefined)
  );
}

function systemText(system: MessagesParams['system']): string {
  if (system === undefined) return '';
  if (typeof system === 'string') return system;
  return system.map(blockText).join('\n');
}

function blockText(block: WireBlock): string {
  return block.type === 'text' && typeof block['text'] === 'string' ? block['text'] : '';
}

function blocksOf(message: WireMessage | undefined): WireBlock[] {
  if (!message) return [];
  return typeof message.content === 'string' ? [{ type: 'text', text: message.content }] : message.content;
}

/** The default answer for a request: a pure function of the request's params. */
export function offlineReply(params: MessagesParams): ScriptedText | ScriptedToolUse {
  const lastUserIndex = params.messages.findLastIndex((m) => m.role === 'user');
  const userBlocks = blocksOf(params.messages[lastUserIndex]);
  const toolResults = userBlocks.filter((b) => b.type === 'tool_result');
  if (toolResults.length > 0) {
    const calls = toolCallsById(params.messages[lastUserIndex - 1]);
    return { kind: 'text', text: toolResults.map((r) => summariseToolResult(r, calls)).join('\n\n') };
  }
  const text = userBlocks.map(blockText).join('\n');
  return commandReply(text, parseTaskLines(params.system));
}

export type Command =
  | { tool: 'create_task'; title: string; deadline?: string }
  | { tool: 'complete_task' | 'delete_task'; title: string }
  | { tool: 'next_task'; intensity?: string }
  | { tool: 'list_tasks'; view?: string };

/**
 * The command grammar, matched case-insensitively on the trimmed text with
 * whitespace collapsed and trailing `.`, `!`, `?` removed.
 */
export function parseCommand(raw: string): Command | undefined {
  const text = raw.trim().replace(/\s+/g, ' ').replace(/[.!?]+$/, '').trim();
  let m = /^(?:(?:add|create|new) task\b:?|remind me to\b)\s*(.+)$/i.exec(text);
  if (m?.[1]) return createCommand(m[1]);
  m = /^(?:complete|done|finish)\b:?\s*(.+)$/i.exec(text) ?? /^mark (.+?) (?:as )?(?:done|complete|completed)$/i.exec(text);
  if (m?.[1]) return titled('complete_task', m[1]);
  m = /^(?:delete|remove)\b:?\s*(.+)$/i.exec(text);
  if (m?.[1]) return titled('delete_task', m[1]);
  if (/^(?:what(?:'s| is)? next|what (?:should|do|can) i do next|(?:my )?next task)$/i.test(text)) {
    return { tool: 'next_task' };
  }
  m = new RegExp(`^(?:what(?:'s| is) )?(?:my )?next (${intensityClasses.join('|')}) task$`, 'i').exec(text);
  if (m?.[1]) return { tool: 'next_task', intensity: m[1].toLowerCase() };
  m = new RegExp(`^(?:list|show)(?: me)?(?: my)?(?: (${taskViews.join('|')}))? tasks$`, 'i').exec(text);
  if (m) return m[1] ? { tool: 'list_tasks', view: m[1].toLowerCase() } : { tool: 'list_tasks' };
  return undefined;
}

function createCommand(rest: string): Command | undefined {
  const m = /^(.+?) (?:by|due) (\d{4}-\d{2}-\d{2})$/i.exec(rest);
  const title = unquote(m?.[1] ?? rest);
  if (!title) return undefined;
  return m?.[2] ? { tool: 'create_task', title, deadline: m[2] } : { tool: 'create_task', title };
}

function titled(tool: 'complete_task' | 'delete_task', rest: string): Command | undefined {
  const title = unquote(rest.replace(/^(?:the )?task\b:?\s*/i, ''));
  return title ? { tool, title } : undefined;
}

function unquote(s: string): string {
  const t = s.trim();
  const m = /^(["'“‘])(.*)(["'”’])$/.exec(t);
  return (m?.[2] ?? t).trim();
}

function commandReply(text: string, tasks: TaskLine[]): ScriptedText | ScriptedToolUse {
  const command = parseCommand(text);
  if (!command) return { kind: 'text', text: friendlyReply(text) };
  switch (command.tool) {
    case 'create_task': {
      const { tool, ...input } = command;
      return { kind: 'tool_use', name: tool, input, text: 'Adding that task.' };
    }
    case 'complete_task':
    case 'delete_task': {
      const task = findTask(tasks, command.title);
      if (!task) {
        return {
          kind: 'text',
          text: `I couldn't find an open task named "${command.title}". Say "list my tasks" to see what is open.`,
        };
      }
      const lead = command.tool === 'complete_task' ? `Marking "${task.title}" as complete.` : `Deleting "${task.title}".`;
      return { kind: 'tool_use', name: command.tool, input: { id: task.id }, text: lead };
    }
    case 'next_task': {
      const input = command.intensity ? { intensity: command.intensity } : {};
      return { kind: 'tool_use', name: 'next_task', input, text: 'Let me pick your next task.' };
    }
    case 'list_tasks': {
      const input = command.view ? { view: command.view } : {};
      return { kind: 'tool_use', name: 'list_tasks', input, text: 'Let me look at your tasks.' };
    }
  }
}

function friendlyReply(text: string): string {
  const gist = text.replace(/\s+/g, ' ').trim();
  const echo = gist.length === 0 ? 'your message' : `"${gist.length > 80 ? `${gist.slice(0, 77)}...` : gist}"`;
  return [
    `Thanks for ${echo}. I'm Sam's offline model, a small built-in stand-in for Claude that runs ` +
      "without a network, so I can't reason about that the way Claude would.",
    '',
    'I can still manage your tasks. Try one of these:',
    '',
    '- `add task: buy milk` creates a task',
    '- `complete buy milk` marks it as done',
    '- `what should I do next?` picks your next task',
    '- `list my tasks` shows what is open',
    '',
    'Set **ANTHROPIC_API_KEY** on the server to talk to Claude itself.',
  ].join('\n');
}

interface ToolCall {
  name: string;
  input: Record<string, unknown>;
}

function toolCallsById(assistant: WireMessage | undefined): Map<string, ToolCall> {
  const calls = new Map<string, ToolCall>();
  if (assistant?.role !== 'assistant') return calls;
  for (const block of blocksOf(assistant)) {
    if (block.type !== 'tool_use' || typeof block['id'] !== 'string' || typeof block['name'] !== 'string') continue;
    calls.set(block['id'], { name: block['name'], input: asRecord(block['input']) ?? {} });
  }
  return calls;
}

function summariseToolResult(block: WireBlock, calls: Map<string, ToolCall>): string {
  const call = typeof block['tool_use_id'] === 'string' ? calls.get(block['tool_use_id']) : undefined;
  const raw = toolResultText(block['content']);
  const result = parseJson(raw);
  if (block['is_error'] === true) return `That didn't work: ${errorMessageOf(result) ?? (raw || 'the tool failed')}.`;
  const title = titleOf(result) ?? stringField(call?.input, 'title') ?? 'the task';
  switch (call?.name) {
    case 'create_task':
      return `Done — created "${title}".`;
    case 'update_task':
      return `Done — updated "${title}".`;
    case 'complete_task':
      return `Done — marked "${title}" as complete.`;
    case 'delete_task':
      return `Done — deleted "${title}". You can restore it from the deleted tasks.`;
    case 'restore_task':
      return `Done — restored "${title}".`;
    case 'list_tasks':
      return listSummary(result);
    case 'next_task':
      return nextSummary(result);
    default:
      return raw ? `Done. The tool said: ${raw.length > 200 ? `${raw.slice(0, 197)}...` : raw}` : 'Done.';
  }
}

function listSummary(result: unknown): string {
  const titles = tasksOf(result).map((t) => titleOf(t) ?? 'untitled');
  if (titles.length === 0) return 'You have no tasks there.';
  const head = titles.length === 1 ? 'Here is your task:' : `Here are your ${titles.length} tasks:`;
  return [head, '', ...titles.map((t) => `- ${t}`)].join('\n');
}

function nextSummary(result: unknown): string {
  const record = asRecord(result);
  const task = record && 'task' in record ? record['task'] : result;
  const title = titleOf(task);
  if (!title) return 'Nothing is waiting for you right now. Enjoy the break.';
  const reason = stringField(record, 'reason') ?? stringField(record, 'explanation');
  return reason ? `I'd do **${title}** next. ${reason}` : `I'd do **${title}** next.`;
}

function toolResultText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((b) => stringField(asRecord(b), 'text') ?? '')
    .join('')
    .trim();
}

function tasksOf(result: unknown): unknown[] {
  if (Array.isArray(result)) return result;
  const record = asRecord(result);
  for (const key of ['tasks', 'items', 'data']) {
    const value = record?.[key];
    if (Array.isArray(value)) return value;
  }
  return [];
}

function titleOf(value: unknown): string | undefined {
  const record = asRecord(value);
  return stringField(record, 'title') ?? stringField(asRecord(record?.['task']), 'title');
}

function errorMessageOf(value: unknown): string | undefined {
  const record = asRecord(value);
  return stringField(asRecord(record?.['error']), 'message') ?? stringField(record, 'message') ?? stringField(record, 'error');
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function stringField(record: Record<string, unknown> | undefined, key: string): string | undefined {
  const value = record?.[key];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Response plans: every scripted or default answer becomes one of these
// ---------------------------------------------------------------------------

type OutBlock =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };

interface Pacing {
  intervalMs: number;
  initialDelayMs: number;
  /** null: one word per text delta */
  chunkChars: number | null;
}

type Ending =
  | { kind: 'complete' }
  | { kind: 'cut'; afterChunks: number }
  | { kind: 'stall'; afterChunks: number; sendHeaders: boolean }
  | { kind: 'stream_error'; afterChunks: number; errorType: AnthropicErrorType; message: string };

interface Plan {
  blocks: OutBlock[];
  stopReason: StopReason;
  inputTokens: number;
  outputTokens: number;
  pacing: Pacing;
  ending: Ending;
}

type ScriptedBody = Exclude<ScriptedResponse, ScriptedError | ScriptedDefault>;

function planOf(response: ScriptedBody, params: MessagesParams, defaultDelayMs: number): Plan {
  const blocks = blocksFor(response);
  const usage = 'usage' in response ? response.usage : undefined;
  const plan: Plan = {
    blocks,
    stopReason: stopReasonFor(response),
    inputTokens: usage?.inputTokens ?? estimateInputTokens(params),
    outputTokens: usage?.outputTokens ?? estimateOutputTokens(blocks),
    pacing: pacingOf(response, defaultDelayMs),
    ending: { kind: 'complete' },
  };
  const total = blocks.reduce((n, b) => n + deltasOf(b, plan.pacing).length, 0);
  plan.ending = endingFor(response, total);
  return plan;
}

function blocksFor(response: ScriptedBody): OutBlock[] {
  const texts = (text: string | undefined): OutBlock[] => (text ? [{ type: 'text', text }] : []);
  switch (response.kind) {
    case 'text':
    case 'cut':
    case 'stall':
    case 'stream_error':
      return texts(response.text);
    case 'tool_use':
      return [...texts(response.text), toolBlock(response)];
    case 'blocks':
      return response.blocks.flatMap((b) => (b.type === 'text' ? texts(b.text) : [toolBlock(b)]));
  }
}

function toolBlock(b: { id?: string; name: string; input: Record<string, unknown> }): OutBlock {
  return { type: 'tool_use', id: b.id ?? toolUseId(), name: b.name, input: b.input };
}

function stopReasonFor(response: ScriptedBody): StopReason {
  if (response.kind === 'blocks') return response.stopReason;
  if (response.kind === 'tool_use') return 'tool_use';
  return (response.kind === 'text' ? response.stopReason : undefined) ?? 'end_turn';
}

function endingFor(response: ScriptedBody, totalDeltas: number): Ending {
  const after = (n: number | undefined, fallback: number) => Math.max(0, Math.min(n ?? fallback, totalDeltas));
  switch (response.kind) {
    case 'cut':
      return { kind: 'cut', afterChunks: after(response.afterChunks, Math.floor(totalDeltas / 2)) };
    case 'stall':
      return { kind: 'stall', afterChunks: after(response.afterChunks, totalDeltas), sendHeaders: response.sendHeaders ?? true };
    case 'stream_error':
      return {
        kind: 'stream_error',
        afterChunks: after(response.afterChunks, totalDeltas),
        errorType: response.errorType,
        message: response.message ?? defaultErrorMessage(response.errorType),
      };
    default:
      return { kind: 'complete' };
  }
}

function pacingOf(p: ScriptedPacing, defaultDelayMs: number): Pacing {
  const initialDelayMs = Math.max(0, p.initialDelayMs ?? 0);
  if (p.tokensPerSecond !== undefined && p.tokensPerSecond > 0) {
    return { intervalMs: 1000 / p.tokensPerSecond, initialDelayMs, chunkChars: positiveOr(p.chunkSize, CHARS_PER_TOKEN) };
  }
  const chunkChars = p.chunkSize === undefined ? null : positiveOr(p.chunkSize, 1);
  return { intervalMs: Math.max(0, p.delayMs ?? defaultDelayMs), initialDelayMs, chunkChars };
}

function positiveOr(n: number | undefined, fallback: number): number {
  return n !== undefined && n >= 1 ? Math.floor(n) : fallback;
}

/** Text deltas (words or fixed chunks), or the tool input's JSON in chunks after an empty one, as the API sends. */
function deltasOf(block: OutBlock, pacing: Pacing): string[] {
  if (block.type === 'text') {
    return pacing.chunkChars === null ? (block.text.match(/\S+\s*|\s+/g) ?? []) : chunk(block.text, pacing.chunkChars);
  }
  return ['', ...chunk(JSON.stringify(block.input), pacing.chunkChars ?? 12)];
}

/** Splits on code points so no delta holds half a surrogate pair. */
function chunk(text: string, size: number): string[] {
  const points = Array.from(text);
  const parts: string[] = [];
  for (let i = 0; i < points.length; i += size) parts.push(points.slice(i, i + size).join(''));
  return parts;
}

function estimateInputTokens(params: Pick<MessagesParams, 'system' | 'messages'> & { tools?: unknown }): number {
  const chars = JSON.stringify([params.system ?? '', params.messages, params.tools ?? []]).length;
  return Math.max(1, Math.ceil(chars / CHARS_PER_TOKEN));
}

function estimateOutputTokens(blocks: OutBlock[]): number {
  const sizeOf = (b: OutBlock) => (b.type === 'text' ? b.text.length : b.name.length + JSON.stringify(b.input).length);
  const chars = blocks.reduce((n, b) => n + sizeOf(b), 0);
  return Math.max(1, Math.ceil(chars / CHARS_PER_TOKEN));
}

function wireBlock(block: OutBlock): object {
  return block.type === 'text' ? { type: 'text', text: block.text } : { ...block };
}

function startBlock(block: OutBlock): object {
  return block.type === 'text' ? { type: 'text', text: '' } : { type: 'tool_use', id: block.id, name: block.name, input: {} };
}

function randomId(prefix: string): string {
  return `${prefix}01${randomBytes(18).toString('base64url').replace(/[-_]/g, 'x')}`;
}

function toolUseId(): string {
  return randomId('toolu_');
}

function defaultErrorMessage(type: AnthropicErrorType): string {
  switch (type) {
    case 'overloaded_error':
      return 'Overloaded';
    case 'api_error':
      return 'Internal server error';
    case 'rate_limit_error':
      return 'Number of request tokens has exceeded your per-minute rate limit';
    default:
      return type.replace(/_/g, ' ');
  }
}

function statusForErrorType(type: AnthropicErrorType): number {
  const statuses: Record<AnthropicErrorType, number> = {
    invalid_request_error: 400,
    authentication_error: 401,
    billing_error: 402,
    permission_error: 403,
    not_found_error: 404,
    request_too_large: 413,
    rate_limit_error: 429,
    api_error: 500,
    timeout_error: 504,
    overloaded_error: 529,
  };
  return statuses[type];
}

// ---------------------------------------------------------------------------
// Writing responses
// ---------------------------------------------------------------------------

/** One response in flight: its abort signal stops every timer and write. */
interface Exchange {
  res: ServerResponse;
  record: RecordedRequest;
  requestId: string;
  signal: AbortSignal;
  onDelta: ((requestId: number, delta: DeltaWrite) => void) | undefined;
  /** destroys the socket on purpose (not a client abort) */
  cut(): void;
}

function epochNow(): number {
  return performance.timeOrigin + performance.now();
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

/** Resolves true once the chunk is handed to the socket, false if the exchange ended first. */
function write(ex: Exchange, chunkText: string): Promise<boolean> {
  if (ex.signal.aborted || ex.res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => resolve(false);
    ex.signal.addEventListener('abort', onAbort, { once: true });
    ex.res.write(chunkText, (err) => {
      ex.signal.removeEventListener('abort', onAbort);
      resolve(!err);
    });
  });
}

function sse(ex: Exchange, type: string, data: object): Promise<boolean> {
  return write(ex, `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
}

function writeHead(ex: Exchange, status: number, headers: Record<string, string>): void {
  ex.record.status = status;
  ex.res.writeHead(status, { 'request-id': ex.requestId, ...headers });
}

function errorBody(ex: Exchange, type: AnthropicErrorType, message: string): object {
  return { type: 'error', error: { type, message }, request_id: ex.requestId };
}

function sendJson(ex: Exchange, status: number, body: object, headers: Record<string, string> = {}): void {
  if (ex.signal.aborted) return;
  writeHead(ex, status, { 'content-type': 'application/json', ...headers });
  ex.res.end(JSON.stringify(body));
}

function sendError(
  ex: Exchange,
  status: number,
  type: AnthropicErrorType,
  message: string,
  headers: Record<string, string> = {},
): void {
  sendJson(ex, status, errorBody(ex, type, message), headers);
}

/** Paces deltas against a fixed schedule from its start, so timer drift does not accumulate. */
class Pacer {
  private readonly start = performance.now();
  private count = 0;

  constructor(
    private readonly pacing: Pacing,
    private readonly signal: AbortSignal,
  ) {}

  next(): Promise<boolean> {
    const target = this.start + this.pacing.initialDelayMs + this.count++ * this.pacing.intervalMs;
    return sleep(target - performance.now(), this.signal);
  }
}

const PING_EVERY_DELTAS = 40;

type Outcome = 'done' | 'interrupted' | 'gone';

async function streamPlan(ex: Exchange, plan: Plan, model: string): Promise<void> {
  const { ending } = plan;
  if (ending.kind === 'stall' && !ending.sendHeaders) return untilAborted(ex.signal);
  writeHead(ex, 200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  ex.res.flushHeaders();
  const message = {
    id: randomId('msg_'),
    type: 'message',
    role: 'assistant',
    model,
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage: { input_tokens: plan.inputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 },
  };
  if (!(await sse(ex, 'message_start', { type: 'message_start', message }))) return;
  const outcome = await streamBlocks(ex, plan);
  if (outcome === 'interrupted') return interrupt(ex, ending);
  if (outcome === 'gone') return;
  const delta = { stop_reason: plan.stopReason, stop_sequence: null };
  if (!(await sse(ex, 'message_delta', { type: 'message_delta', delta, usage: { output_tokens: plan.outputTokens } }))) return;
  if (await sse(ex, 'message_stop', { type: 'message_stop' })) ex.res.end();
}

/** Streams the content blocks until the plan's ending interrupts them (after `afterChunks` deltas). */
async function streamBlocks(ex: Exchange, plan: Plan): Promise<Outcome> {
  const limit = plan.ending.kind === 'complete' ? Infinity : plan.ending.afterChunks;
  const pacer = new Pacer(plan.pacing, ex.signal);
  let sent = 0;
  for (const [index, block] of plan.blocks.entries()) {
    const content_block = startBlock(block);
    if (!(await sse(ex, 'content_block_start', { type: 'content_block_start', index, content_block }))) return 'gone';
    if (index === 0 && !(await sse(ex, 'ping', { type: 'ping' }))) return 'gone';
    for (const piece of deltasOf(block, plan.pacing)) {
      if (sent >= limit) return 'interrupted';
      if (!(await pacer.next())) return 'gone';
      if (!(await writeDelta(ex, index, block.type === 'text' ? 'text_delta' : 'input_json_delta', piece))) return 'gone';
      sent += 1;
      if (sent % PING_EVERY_DELTAS === 0 && !(await sse(ex, 'ping', { type: 'ping' }))) return 'gone';
    }
    if (sent >= limit) return 'interrupted';
    if (!(await sse(ex, 'content_block_stop', { type: 'content_block_stop', index }))) return 'gone';
  }
  return plan.ending.kind === 'complete' ? 'done' : 'interrupted';
}

function writeDelta(ex: Exchange, index: number, type: DeltaWrite['type'], text: string): Promise<boolean> {
  const delta: DeltaWrite = { at: epochNow(), index, type, text };
  ex.record.deltas.push(delta);
  ex.onDelta?.(ex.record.id, delta);
  const payload = type === 'text_delta' ? { type, text } : { type, partial_json: text };
  return sse(ex, 'content_block_delta', { type: 'content_block_delta', index, delta: payload });
}

async function interrupt(ex: Exchange, ending: Ending): Promise<void> {
  if (ex.signal.aborted) return;
  switch (ending.kind) {
    case 'cut':
      ex.cut();
      return;
    case 'stall':
      return untilAborted(ex.signal);
    case 'stream_error':
      if (await sse(ex, 'error', errorBody(ex, ending.errorType, ending.message))) ex.res.end();
      return;
    case 'complete':
      return;
  }
}

/** Non-streaming: waits about as long as streaming would take, then sends the whole Message. */
async function respondJson(ex: Exchange, plan: Plan, model: string): Promise<void> {
  const { ending } = plan;
  const deltas = plan.blocks.reduce((n, b) => n + deltasOf(b, plan.pacing).length, 0);
  const generationMs = plan.pacing.initialDelayMs + deltas * plan.pacing.intervalMs;
  if (ending.kind === 'stream_error') {
    if (!(await sleep(generationMs, ex.signal))) return;
    return sendError(ex, statusForErrorType(ending.errorType), ending.errorType, ending.message);
    return;
  }
  if (ending.kind === 'stall') {
    if (ending.sendHeaders) {
      writeHead(ex, 200, { 'content-type': 'application/json' });
      ex.res.flushHeaders();
    }
    return untilAborted(ex.signal);
  }
  if (!(await sleep(generationMs, ex.signal))) return;
  const message = messageJson(plan, model);
  if (ending.kind !== 'cut') return sendJson(ex, 200, message);
  const body = JSON.stringify(message);
  writeHead(ex, 200, { 'content-type': 'application/json' });
  if (await write(ex, body.slice(0, Math.floor(body.length / 2)))) ex.cut();
}

function messageJson(plan: Plan, model: string): object {
  return {
    id: randomId('msg_'),
    type: 'message',
    role: 'assistant',
    model,
    content: plan.blocks.map(wireBlock),
    stop_reason: plan.stopReason,
    stop_sequence: null,
    usage: {
      input_tokens: plan.inputTokens,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      output_tokens: plan.outputTokens,
    },
  };
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

const MAX_BODY_BYTES = 32 * 1024 * 1024;
const DEFAULT_WAIT_MS = 5000;
const DEFAULT_DELTA_DELAY_MS = 15;
const DEFAULT_MAX_RECORDED = 500;
const noopLogger: OfflineModelLogger = { info: () => {}, warn: () => {} };

class BodyTooLargeError extends Error {}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const piece of req) {
    const buffer = piece as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) throw new BodyTooLargeError();
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

type AuthResult = { ok: true } | { ok: false; message: string };

function checkAuth(headers: IncomingHttpHeaders, expected: string | undefined): AuthResult {
  const apiKey = typeof headers['x-api-key'] === 'string' ? headers['x-api-key'].trim() : '';
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '')?.[1] ?? '';
  const given = apiKey || bearer;
  if (!given) return { ok: false, message: 'x-api-key header is required' };
  if (expected !== undefined && apiKey !== expected && bearer !== expected) {
    return { ok: false, message: 'invalid x-api-key' };
  }
  return { ok: true };
}

function issueText(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid request';
  const path = issue.path.map(String).join('.');
  return path ? `${path}: ${issue.message}` : issue.message;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve: (value: T) => void = () => {};
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`offline model: timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

interface RequestWaiter {
  predicate: (req: RecordedRequest) => boolean;
  resolve(req: RecordedRequest): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

const BODY_TOO_LARGE = JSON.stringify({
  type: 'error',
  error: { type: 'request_too_large', message: 'Request exceeds the maximum allowed size' },
});

function hasParams(record: RecordedRequest): record is ValidRecordedRequest {
  return record.params !== null;
}

class OfflineModelServer implements AnthropicCompatibleServer {
  url = '';
  port = 0;
  readonly requests: RecordedRequest[] = [];
  private readonly server: Server;
  private readonly logger: OfflineModelLogger;
  private readonly ends = new Map<number, Deferred<RecordedRequest>>();
  private readonly claimed = new Set<number>();
  private readonly live = new Set<AbortController>();
  private waiters: RequestWaiter[] = [];
  private queue: ScriptedResponse[] = [];
  private scriptFn: ScriptFunction | undefined;
  private lastId = 0;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: OfflineModelOptions) {
    this.logger = options.logger ?? noopLogger;
    this.setScript(options.script);
    this.server = createServer({ noDelay: true }, (req, res) => void this.handle(req, res));
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
    this.url = `http://127.0.0.1:${this.port}`;
    this.logger.info({ url: this.url }, 'offline model listening');
  }

  enqueue(...responses: ScriptedResponse[]): void {
    this.queue.push(...responses);
  }

  setScript(script: ScriptSource | undefined): void {
    this.queue = Array.isArray(script) ? script : [];
    this.scriptFn = typeof script === 'function' ? script : undefined;
  }

  waitForRequest(
    predicate: (req: RecordedRequest) => boolean = () => true,
    timeoutMs = DEFAULT_WAIT_MS,
  ): Promise<RecordedRequest> {
    const existing = this.requests.find((r) => !this.claimed.has(r.id) && predicate(r));
    if (existing) {
      this.claimed.add(existing.id);
      return Promise.resolve(existing);
    }
    if (this.closing) return Promise.reject(new Error('offline model: server is closed'));
    return new Promise<RecordedRequest>((resolve, reject) => {
      const waiter: RequestWaiter = {
        predicate,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new Error(`offline model: no matching request within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  waitForEnd(requestId: number, timeoutMs = DEFAULT_WAIT_MS): Promise<RecordedRequest> {
    const end = this.ends.get(requestId);
    if (!end) return Promise.reject(new Error(`offline model: no request ${requestId}`));
    return withTimeout(end.promise, timeoutMs, `the end of request ${requestId}`);
  }

  async waitForAbort(requestId: number, timeoutMs = DEFAULT_WAIT_MS): Promise<RecordedRequest> {
    const record = await this.waitForEnd(requestId, timeoutMs);
    if (!record.aborted) throw new Error(`offline model: request ${requestId} ended without a client abort`);
    return record;
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      for (const controller of this.live) controller.abort();
      for (const waiter of this.waiters) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error('offline model: server closed'));
      }
      this.waiters = [];
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closing;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on('error', (err) => this.logger.warn({ err: err.message }, 'offline model: response error'));
    req.on('error', () => res.destroy());
    let raw: string;
    try {
      raw = await readBody(req);
    } catch (err) {
      if (err instanceof BodyTooLargeError && !res.headersSent) {
        res.writeHead(413, { 'content-type': 'application/json', connection: 'close' }).end(BODY_TOO_LARGE);
      }
      return;
    }
    const json = parseJson(raw);
    const ex = this.open(req, res, json === undefined ? null : json);
    try {
      await this.route(ex, req, json !== undefined);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.logger.warn({ requestId: ex.record.id, err: message }, 'offline model: script failed');
      if (!res.headersSent && !ex.signal.aborted) sendError(ex, 500, 'api_error', 'Internal server error');
      else if (!res.writableEnded) res.destroy();
    }
  }

  /** Records the request and ties its lifetime (abort, end) to the response. */
  private open(req: IncomingMessage, res: ServerResponse, body: unknown): Exchange {
    const record: RecordedRequest = {
      id: ++this.lastId,
      method: req.method ?? 'GET',
      path: new URL(req.url ?? '/', 'http://localhost').pathname,
      headers: req.headers,
      body,
      params: null,
      receivedAt: Date.now(),
      status: null,
      aborted: false,
      completed: false,
      deltas: [],
    };
    this.remember(record);
    const controller = new AbortController();
    this.live.add(controller);
    const end = deferred<RecordedRequest>();
    this.ends.set(record.id, end);
    let cutOnPurpose = false;
    res.on('finish', () => (record.completed = true));
    res.on('close', () => {
      if (!res.writableFinished && !cutOnPurpose && !this.closing) record.aborted = true;
      controller.abort();
      this.live.delete(controller);
      end.resolve(record);
    });
    this.notifyWaiters(record);
    return {
      res,
      record,
      requestId: randomId('req_'),
      signal: controller.signal,
      onDelta: this.options.onDelta,
      cut: () => {
        cutOnPurpose = true;
        res.destroy();
      },
    };
  }

  /** Keeps the most recent requests only: the dev server runs this for the life of the process. */
  private remember(record: RecordedRequest): void {
    this.requests.push(record);
    const max = this.options.maxRecordedRequests ?? DEFAULT_MAX_RECORDED;
    while (this.requests.length > max) {
      const dropped = this.requests.shift();
      if (!dropped) break;
      this.ends.delete(dropped.id);
      this.claimed.delete(dropped.id);
    }
  }

  private notifyWaiters(record: RecordedRequest): void {
    const match = this.waiters.find((w) => w.predicate(record));
    if (!match) return;
    this.waiters = this.waiters.filter((w) => w !== match);
    clearTimeout(match.timer);
    this.claimed.add(record.id);
    match.resolve(record);
  }

  private async route(ex: Exchange, req: IncomingMessage, bodyIsJson: boolean): Promise<void> {
    const { record } = ex;
    const countOnly = record.path === '/v1/messages/count_tokens';
    if (record.path !== '/v1/messages' && !countOnly) {
      return sendError(ex, 404, 'not_found_error', `Not found: ${record.method} ${record.path}`);
    }
    if (record.method !== 'POST') return sendError(ex, 405, 'invalid_request_error', `Method ${record.method} not allowed`);
    const auth = checkAuth(req.headers, this.options.apiKey);
    if (!auth.ok) {
      this.logger.warn({ requestId: record.id }, 'offline model: request without a valid key');
      return sendError(ex, 401, 'authentication_error', auth.message);
    }
    if (!bodyIsJson) return sendError(ex, 400, 'invalid_request_error', 'The request body is not valid JSON.');
    if (countOnly) return this.countTokens(ex);
    const parsed = messagesParamsSchema.safeParse(record.body);
    if (!parsed.success) return sendError(ex, 400, 'invalid_request_error', issueText(parsed.error));
    record.params = parsed.data;
    if (hasParams(record)) return this.answer(ex, record);
  }

  private countTokens(ex: Exchange): void {
    const parsed = countTokensSchema.safeParse(ex.record.body);
    if (!parsed.success) return sendError(ex, 400, 'invalid_request_error', issueText(parsed.error));
    sendJson(ex, 200, { input_tokens: estimateInputTokens(parsed.data) });
  }

  private async answer(ex: Exchange, record: ValidRecordedRequest): Promise<void> {
    const { params } = record;
    const chosen = await this.choose(record);
    const response = chosen.kind === 'default' ? offlineReply(params) : chosen;
    if (response.kind === 'error') {
      const message = response.message ?? defaultErrorMessage(response.errorType);
      return sendError(ex, response.status, response.errorType, message, response.headers);
    }
    const plan = planOf(response, params, this.options.deltaDelayMs ?? DEFAULT_DELTA_DELAY_MS);
    return params.stream ? streamPlan(ex, plan, params.model) : respondJson(ex, plan, params.model);
  }

  private async choose(record: ValidRecordedRequest): Promise<ScriptedResponse> {
    const queued = this.queue.shift();
    if (queued) return queued;
    return (await this.scriptFn?.(record)) ?? { kind: 'default' };
  }
}

/**
 * Starts the Anthropic-compatible endpoint on 127.0.0.1 (an ephemeral port).
 * Point the SDK at it with `new Anthropic({ apiKey, baseURL: server.url })`.
 */
export async function createAnthropicCompatibleServer(options: OfflineModelOptions = {}): Promise<AnthropicCompatibleServer> {
  const server = new OfflineModelServer(options);
  await server.listen();
  return server;
}
