/**
 * The offline model (PROTOCOL.md §6.4): an Anthropic-compatible Messages
 * endpoint on 127.0.0.1, so that outside production with no ANTHROPIC_API_KEY
 * the one real SDK code path runs with no network. The server loads this module
 * only then (`server/deps.ts`); tests and the bench script it.
 *
 * It speaks what Sam uses of the public Messages API: `POST /v1/messages` with
 * `stream: true` (the SDK appends `/v1/messages` to `baseURL`), server-sent
 * events in the official order, and `{"type":"error","error":{"type","message"}}`
 * error bodies.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { z } from 'zod';
import { messagesParamsSchema, offlineReply, parseJson, type MessagesParams } from './replies.js';
import { planOf, sendError, streamPlan, type DeltaWrite, type Exchange, type ScriptedResponse } from './responses.js';
import { inputTokensOf, PromptCache, type InputUsage, type PromptCacheOptions } from './prompt-cache.js';

export type { DeltaWrite, ScriptedResponse } from './responses.js';

export interface RecordedRequest {
  /** 1, 2, 3… per server */
  id: number;
  /** the parsed JSON body, or null when it was not JSON */
  body: unknown;
  /** the body once it validated as Messages params, else null */
  params: MessagesParams | null;
  /** the client closed the connection before the response ended */
  aborted: boolean;
  /** the response ended normally */
  completed: boolean;
}

export type ValidRecordedRequest = RecordedRequest & { params: MessagesParams };

/** Decides a response; returning undefined falls back to the default answer. */
export type ScriptFunction = (
  req: ValidRecordedRequest,
) => ScriptedResponse | undefined | Promise<ScriptedResponse | undefined>;

export interface OfflineModelLogger {
  warn(obj: object, msg?: string): void;
}

export interface OfflineModelOptions {
  /** consulted when the queue is empty */
  script?: ScriptFunction;
  logger?: OfflineModelLogger;
  /** pause between deltas when a response does not say; default 15 ms so the UI visibly streams */
  deltaDelayMs?: number;
  /** called as each delta is written (the bench measures what the relay adds from it) */
  onDelta?: (requestId: number, delta: DeltaWrite) => void;
  /** `requests` keeps only the latest ones; default 500 */
  maxRecordedRequests?: number;
  /**
   * The model's context window in tokens (about 4 characters each); default 200,000. A request
   * longer than it is a 400 "prompt is too long"; an answer that would overflow it stops with
   * `model_context_window_exceeded`.
   */
  contextWindowTokens?: number;
  /** the simulated prompt cache behind the usage's cache counts */
  promptCache?: PromptCacheOptions;
}

export interface AnthropicCompatibleServer {
  /** base URL for the SDK (`new Anthropic({ baseURL: url })`), no trailing slash */
  url: string;
  /** the requests received, oldest first (the latest `maxRecordedRequests`) */
  readonly requests: RecordedRequest[];
  /** appends to the response queue, served before the script function and the default */
  enqueue(...responses: ScriptedResponse[]): void;
  /** replaces the script function and empties the queue; undefined restores the default answers */
  setScript(script: ScriptFunction | undefined): void;
  /** Resolves with the first request, already received or future, that matches. Default timeout 5 s. */
  waitForRequest(predicate?: (req: RecordedRequest) => boolean, timeoutMs?: number): Promise<RecordedRequest>;
  /** Resolves when the client aborted that request; rejects if it ended otherwise or on timeout (default 5 s). */
  waitForAbort(requestId: number, timeoutMs?: number): Promise<RecordedRequest>;
  /** Stops pending responses, ends open connections and stops listening. Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_WAIT_MS = 5000;
const DEFAULT_DELTA_DELAY_MS = 15;
const DEFAULT_MAX_RECORDED = 500;
const DEFAULT_CONTEXT_WINDOW = 200_000;

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const piece of req) chunks.push(piece as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function issueText(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid request';
  const path = issue.path.map(String).join('.');
  return path ? `${path}: ${issue.message}` : issue.message;
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

class OfflineModelServer implements AnthropicCompatibleServer {
  url = '';
  readonly requests: RecordedRequest[] = [];
  private readonly server: Server;
  private readonly logger: OfflineModelLogger | undefined;
  /** settles when the response is over, whatever the outcome */
  private readonly ends = new Map<number, Promise<RecordedRequest>>();
  private readonly live = new Set<AbortController>();
  private waiters: RequestWaiter[] = [];
  private queue: ScriptedResponse[] = [];
  private script: ScriptFunction | undefined;
  private lastId = 0;
  private closing: Promise<void> | undefined;
  private readonly cache: PromptCache;

  constructor(private readonly options: OfflineModelOptions) {
    this.logger = options.logger;
    this.script = options.script;
    this.cache = new PromptCache(options.promptCache);
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
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  enqueue(...responses: ScriptedResponse[]): void {
    this.queue.push(...responses);
  }

  setScript(script: ScriptFunction | undefined): void {
    this.queue = [];
    this.script = script;
  }

  waitForRequest(predicate: (req: RecordedRequest) => boolean = () => true, timeoutMs = DEFAULT_WAIT_MS): Promise<RecordedRequest> {
    const existing = this.requests.find(predicate);
    if (existing) return Promise.resolve(existing);
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

  async waitForAbort(requestId: number, timeoutMs = DEFAULT_WAIT_MS): Promise<RecordedRequest> {
    const end = this.ends.get(requestId);
    if (!end) throw new Error(`offline model: no request ${requestId}`);
    const record = await withTimeout(end, timeoutMs, `the end of request ${requestId}`);
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
    res.on('error', (err) => this.logger?.warn({ err: err.message }, 'offline model: response error'));
    let raw: string;
    try {
      raw = await readBody(req);
    } catch {
      res.destroy();
      return;
    }
    const { record, ex } = this.open(res, parseJson(raw) ?? null);
    try {
      await this.answer(ex, record, req);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.logger?.warn({ requestId: record.id, err: message }, 'offline model: script failed');
      if (!res.headersSent) sendError(ex, 500, 'api_error');
      else if (!res.writableEnded) res.destroy();
    }
  }

  /** Records the request and ties its lifetime (abort, end) to the response. */
  private open(res: ServerResponse, body: unknown): { record: RecordedRequest; ex: Exchange } {
    const record: RecordedRequest = { id: ++this.lastId, body, params: null, aborted: false, completed: false };
    this.requests.push(record);
    const max = this.options.maxRecordedRequests ?? DEFAULT_MAX_RECORDED;
    for (const dropped of this.requests.splice(0, Math.max(0, this.requests.length - max))) this.ends.delete(dropped.id);
    const controller = new AbortController();
    this.live.add(controller);
    let cutOnPurpose = false;
    res.on('finish', () => (record.completed = true));
    const ended = new Promise<RecordedRequest>((resolve) =>
      res.on('close', () => {
        if (!res.writableFinished && !cutOnPurpose && !this.closing) record.aborted = true;
        controller.abort();
        this.live.delete(controller);
        resolve(record);
      }),
    );
    this.ends.set(record.id, ended);
    const matched = this.waiters.filter((w) => w.predicate(record));
    this.waiters = this.waiters.filter((w) => !matched.includes(w));
    for (const waiter of matched) {
      clearTimeout(waiter.timer);
      waiter.resolve(record);
    }
    const ex: Exchange = {
      res,
      signal: controller.signal,
      onDelta: (delta) => this.options.onDelta?.(record.id, delta),
      cut: () => {
        cutOnPurpose = true;
        res.destroy();
      },
    };
    return { record, ex };
  }

  private async answer(ex: Exchange, record: RecordedRequest, req: IncomingMessage): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'POST' || path !== '/v1/messages') return sendError(ex, 404, 'not_found_error', `Not found: ${req.method} ${path}`);
    const parsed = messagesParamsSchema.safeParse(record.body);
    if (!parsed.success) return sendError(ex, 400, 'invalid_request_error', issueText(parsed.error));
    const params = parsed.data;
    if (!params.stream) return sendError(ex, 400, 'invalid_request_error', 'stream: the offline model only streams');
    const valid = Object.assign(record, { params });
    const response = this.queue.shift() ?? (await this.script?.(valid)) ?? offlineReply(params);
    if (response.kind === 'error') return sendError(ex, response.status, response.errorType);
    const contextWindow = ('contextWindow' in response ? response.contextWindow : undefined) ?? this.options.contextWindowTokens ?? DEFAULT_CONTEXT_WINDOW;
    const inputTokens = inputTokensOf(params);
    // The API's wording, which clients match on.
    if (inputTokens > contextWindow) return sendError(ex, 400, 'invalid_request_error', `prompt is too long: ${inputTokens} tokens > ${contextWindow} maximum`);
    let usage: InputUsage;
    if ('cache' in response && response.cache) {
      const { readTokens, creationTokens } = response.cache;
      usage = { inputTokens: Math.max(0, inputTokens - readTokens - creationTokens), cacheReadTokens: readTokens, cacheCreationTokens: creationTokens };
    } else usage = this.cache.use(params);
    const delayMs = this.options.deltaDelayMs ?? DEFAULT_DELTA_DELAY_MS;
    return streamPlan(ex, planOf(response, params, { delayMs, contextWindow, usage }), params.model);
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
