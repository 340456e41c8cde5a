/**
 * The generation (CHAT-2 … CHAT-8): one node runs the Claude stream through the
 * official SDK, coalesces deltas, numbers them and broadcasts them to the user's
 * room, keeps the text so far in Redis for tabs that join mid-stream, runs the
 * tool loop through the tasks service, and writes the final message with why
 * it stopped (CHAT-13: a paused turn goes on by itself; CHAT-14: an over-long
 * context is retried once with less history).
 */
import Anthropic from '@anthropic-ai/sdk';
import { ErrorCode } from '../../../shared/errors.js';
import type { StopReason, ToolCall, Usage } from '../../../shared/schemas/chat.js';
import type { Task } from '../../../shared/schemas/tasks.js';
import type { Logger } from '../../logger.js';
import type { ChatHooks } from '../../hooks.js';
import type { Redis } from '../../redis.js';
import type { Broadcaster } from '../../realtime/rooms.js';
import type { TasksService } from '../tasks/tasks.service.js';
import type { SearchService } from '../search/search.service.js';
import { buildSystemPrompt, HISTORY_TOKEN_BUDGET, trimHistory, type HistoryMessage, type PromptUser } from './prompt.js';
import { runTool, toolDefinitions } from './tools.js';
import type { ChatViews } from './views.js';
import { readRound, type RoundResult } from './upstream-round.js';
import { cutOffText, harderBudget, isPromptTooLong, MAX_PAUSE_CONTINUATIONS, requestMessages } from './rounds.js';
import { appendDeltas, beat, firstBeat, rewriteDeltas, saveToolCalls, type DeltaAppend } from './stream-buffer.js';

export const MAX_TOOL_ROUNDS = 8;
export const MAX_OUTPUT_TOKENS = 2_048;
/** deltas are coalesced for this long at most instead of one emit per token */
export const COALESCE_MS = 25;
/**
 * The shared flush sends this many streams' deltas at a time, and lets the
 * loop read its sockets between slices (bench/README.md, "Delta coalescing").
 */
export const FLUSH_SLICE = 50;
/** a node refreshes the heartbeats of its generations this often; one expires after HEARTBEAT_TTL_MS */
export const HEARTBEAT_MS = 5_000;
export const HEARTBEAT_TTL_MS = 15_000;

export interface GenerationJob {
  userId: string;
  conversationId: string;
  assistantMessageId: string;
  /**
   * what the prompt is built from, read with the send (the conversation ends with the user's new message,
   * or for a continuation with the answer being continued)
   */
  prompt: { user: PromptUser; history: HistoryMessage[]; openTasks: Task[] };
  /** CHAT-13 `chat:continue`: the answer as it stands, which the new text, tool calls and usage add to */
  continuing?: { content: string; lastSeq: number | null; toolCalls: ToolCall[]; usage: Usage | null };
}

/** The message's deltas so far for a continuation: its content stands as delta 0 and the rest are empty, so `seq` goes on from `lastSeq`. */
function seedDeltas(base: { content: string; lastSeq: number | null }): string[] {
  return base.lastSeq === null ? [] : [base.content, ...Array<string>(base.lastSeq).fill('')];
}

type EndReason = 'cancelled' | 'timeout' | 'shutdown';

interface Running {
  job: GenerationJob;
  abort: AbortController;
  reason: EndReason | undefined;
  done: Promise<void>;
  /** writing its end: it no longer beats (a beat after that would set its heartbeat again) */
  ending: boolean;
}

/** One stream's relay state. */
interface Relay {
  userId: string;
  conversationId: string;
  messageId: string;
  /** text received and not yet sent */
  pending: string;
  /** every delta sent, by seq: the content so far is their concatenation */
  deltas: string[];
  /** the Redis list fell out of step (a lost append): the next flush rewrites it whole */
  rewrite: boolean;
}

export interface AssistantDeps {
  redis: Redis;
  anthropic: Anthropic;
  model: string;
  tasks: TasksService;
  /** what the `search_history` tool searches */
  search: SearchService;
  broadcaster: Broadcaster;
  views: ChatViews;
  logger: Logger;
  nodeId: string;
  hooks: ChatHooks;
  /** abort when the upstream sends nothing for this long */
  idleTimeoutMs: number;
}

export class Assistant {
  private readonly running = new Map<string, Running>();
  /**
   * Every stream with text waiting, flushed together once per COALESCE_MS,
   * a slice at a time: a slice's Redis appends in one command and its deltas
   * to the other nodes with the loop turn's other broadcasts (`Broadcaster`).
   */
  private readonly waiting = new Set<Relay>();
  private tick: NodeJS.Timeout | undefined;
  /** The node's heartbeat for its generations (CHAT-7), while it has any: one Redis round trip per beat for all of them. */
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(private readonly deps: AssistantDeps) {}

  get active(): number {
    return this.running.size;
  }

  isRunningHere(messageId: string): boolean {
    return this.running.has(messageId);
  }

  /** Starts a generation on this node; resolves when it has ended. */
  start(job: GenerationJob): Promise<void> {
    const abort = new AbortController();
    const entry: Running = { job, abort, reason: undefined, done: Promise.resolve(), ending: false };
    this.running.set(job.assistantMessageId, entry);
    this.deps.hooks.onGenerationStart();
    // The first beat goes at once, not at the next tick: another node's sweep judges the answer by its `updated_at`,
    // written with this node's clock, so with clocks apart by more than the TTL a fresh answer could look stale.
    firstBeat(this.deps.redis, this.deps.nodeId, HEARTBEAT_TTL_MS, job.assistantMessageId).catch(() => undefined);
    this.heartbeat ??= setInterval(() => this.beatFor([...this.running].filter(([, e]) => !e.ending).map(([id]) => id)), HEARTBEAT_MS);
    entry.done = this.run(entry)
      .catch((err: unknown) => this.deps.logger.error({ err, messageId: job.assistantMessageId }, 'generation crashed'))
      .finally(() => {
        this.running.delete(job.assistantMessageId);
        this.deps.hooks.onGenerationEnd();
        if (this.running.size > 0) return;
        clearInterval(this.heartbeat);
        this.heartbeat = undefined;
      });
    return entry.done;
  }

  /** Sets the heartbeat of these generations and keeps their buffers, in one round trip. */
  private beatFor(messageIds: string[]): void {
    if (messageIds.length === 0) return;
    beat(this.deps.redis, this.deps.nodeId, HEARTBEAT_TTL_MS, messageIds).catch(() => undefined);
  }

  /** Aborts a generation running on this node; false when it runs elsewhere (or not at all). */
  async stop(messageId: string, reason: EndReason): Promise<boolean> {
    const entry = this.running.get(messageId);
    if (!entry) return false;
    entry.reason ??= reason;
    entry.abort.abort();
    await entry.done;
    return true;
  }

  /**
   * A drain: resolves once no generation runs on this node, or at `deadline` (epoch ms), whichever comes first.
   * Generations started meanwhile (a `chat:send` that was in flight) are waited for too.
   */
  async settle(deadline: number): Promise<void> {
    while (this.running.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([...this.running.values()].map((entry) => entry.done)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, left))),
      ]);
      clearTimeout(timer);
    }
  }

  /** Graceful shutdown: every generation of this node ends as `interrupted`. */
  async shutdown(): Promise<void> {
    await Promise.all([...this.running.keys()].map((id) => this.stop(id, 'shutdown')));
  }

  private scheduleFlush(relay: Relay): void {
    this.waiting.add(relay);
    this.tick ??= setTimeout(() => {
      this.tick = undefined;
      const relays = [...this.waiting];
      this.waiting.clear();
      this.flushSlices(relays, 0);
    }, COALESCE_MS);
  }

  /**
   * Flushes the streams that were waiting at the tick, FLUSH_SLICE at a time.
   * In one go, hundreds of streams held the loop for a good part of every
   * tick, and a stream's first delta, a new send or a tab's event arriving
   * meanwhile waited for all of it. A stream whose text was sent by its own flush
   * before its slice (its first delta, its end) has nothing left to send then.
   */
  private flushSlices(relays: Relay[], from: number): void {
    const to = Math.min(from + FLUSH_SLICE, relays.length);
    this.flush(relays.slice(from, to));
    if (to < relays.length) setImmediate(() => this.flushSlices(relays, to));
  }

  /**
   * Sends the text each stream has waiting as its next delta. The buffer
   * appends are issued first, all in one command, then the deltas go out
   * (CHAT-3: a tab asking chat:history later reads them on the same Redis).
   */
  private flush(relays: Iterable<Relay>): void {
    const { redis, broadcaster } = this.deps;
    const appends: (DeltaAppend & { relay: Relay })[] = [];
    const sent: { relay: Relay; seq: number; text: string }[] = [];
    for (const relay of relays) {
      this.waiting.delete(relay);
      if (!relay.pending) continue;
      const text = relay.pending;
      relay.pending = '';
      const seq = relay.deltas.length;
      relay.deltas.push(text);
      sent.push({ relay, seq, text });
      if (!relay.rewrite) {
        appends.push({ relay, messageId: relay.messageId, seq, text });
        continue;
      }
      relay.rewrite = false;
      void rewriteDeltas(redis, relay.messageId, relay.deltas).then((ok) => {
        if (!ok) relay.rewrite = true;
      });
    }
    if (appends.length > 0) {
      void appendDeltas(redis, appends).then((inStep) =>
        inStep.forEach((ok, i) => {
          if (!ok) appends[i]!.relay.rewrite = true;
        }),
      );
    }
    broadcaster.toUsers(
      'chat:delta',
      sent.map(({ relay, seq, text }) => ({ userId: relay.userId, args: [{ conversationId: relay.conversationId, messageId: relay.messageId, seq, text }] })),
    );
  }

  private async run(entry: Running): Promise<void> {
    const { redis, anthropic, broadcaster, logger, hooks, model } = this.deps;
    const { userId, conversationId, assistantMessageId: messageId } = entry.job;
    const started = performance.now();
    const base = entry.job.continuing;
    const toolCalls: ToolCall[] = [...(base?.toolCalls ?? [])];
    const usage: Usage = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheCreationTokens: 0, ...base?.usage };
    let firstToken = true;
    const relay: Relay = { userId, conversationId, messageId, pending: '', deltas: base ? seedDeltas(base) : [], rewrite: false };
    // A continuation's buffer starts as the message stands, for tabs that ask history mid-stream.
    if (base) relay.rewrite = !(await rewriteDeltas(redis, messageId, relay.deltas));
    const deltas = relay.deltas;
    const flush = () => this.flush([relay]);
    const push = (text: string) => {
      if (!text) return;
      relay.pending += text;
      if (firstToken) {
        // The first delta goes out at once: coalescing is for throughput, not for the time to first token.
        firstToken = false;
        hooks.onFirstToken((performance.now() - started) / 1000);
        flush();
        return;
      }
      this.scheduleFlush(relay);
    };

    let idleTimer: NodeJS.Timeout | undefined;
    // Called on every upstream event: re-arming the same timer is cheaper than a new one each time.
    const touch = () => {
      if (idleTimer) idleTimer.refresh();
      else
        idleTimer = setTimeout(() => {
          entry.reason ??= 'timeout';
          entry.abort.abort();
        }, this.deps.idleTimeoutMs);
    };

    let status: 'complete' | 'cancelled' | 'error' | 'interrupted' = 'complete';
    let error: { code: ErrorCode; message: string } | null = null;
    /** the stop reason of the round the answer ended in; null when that round did not finish */
    let stopReason: StopReason | null = null;
    try {
      const { user, history, openTasks } = entry.job.prompt;
      const system = buildSystemPrompt(user, openTasks, new Date());
      let past = trimHistory(history, HISTORY_TOKEN_BUDGET);
      /** this answer's rounds after the history: tool calls with their results, a paused or cut-off turn sent back */
      const rounds: Anthropic.MessageParam[] = [];
      let retried = false;
      let pauses = 0;
      let toolRounds = 0;
      /** a tool round's text is set apart from the next round's; a paused or retried turn just goes on */
      let apart = false;

      for (;;) {
        if (apart && (deltas.length > 0 || relay.pending)) push('\n\n');
        apart = false;
        stopReason = null;
        touch();
        let round: RoundResult;
        try {
          const events = await anthropic.messages.create(
            { model, max_tokens: MAX_OUTPUT_TOKENS, system, messages: requestMessages(past, rounds), tools: toolDefinitions, stream: true },
            { signal: entry.abort.signal },
          );
          round = await readRound(events, push, touch);
        } catch (err) {
          // CHAT-14: a prompt over the context window is tried once more with less history.
          if (retried || entry.abort.signal.aborted || !isPromptTooLong(err)) throw err;
          retried = true;
          past = trimHistory(history, harderBudget(past));
          logger.info({ messageId }, 'prompt too long: retrying with less history');
          continue;
        }
        usage.inputTokens += round.inputTokens;
        usage.outputTokens += round.outputTokens;
        usage.cacheReadTokens += round.cacheReadTokens;
        usage.cacheCreationTokens += round.cacheCreationTokens;
        hooks.onOutputTokens(round.outputTokens);
        hooks.onPromptTokens(round);
        flush();
        stopReason = round.stopReason;
        if (round.stopReason === 'model_context_window_exceeded') {
          if (retried) {
            status = 'error';
            error = { code: ErrorCode.UPSTREAM, message: CONTEXT_TOO_LONG };
            hooks.onUpstreamError('context_window');
            break;
          }
          // CHAT-14: the text so far goes back with less history, and the model goes on from it.
          retried = true;
          past = trimHistory(history, harderBudget(past));
          rounds.push({ role: 'assistant', content: cutOffText(round.content) });
          logger.info({ messageId }, 'context window exceeded: retrying with less history');
          continue;
        }
        // CHAT-13: a paused turn is sent back as it came, and the model goes on.
        if (round.stopReason === 'pause_turn' && pauses < MAX_PAUSE_CONTINUATIONS) {
          pauses++;
          rounds.push({ role: 'assistant', content: round.content });
          continue;
        }
        if (round.stopReason !== 'tool_use') break;

        const results: Anthropic.ToolResultBlockParam[] = [];
        for (const block of round.toolUses) {
          const outcome = await runTool(this.deps, userId, block.name, block.input, logger);
          const toolCall: ToolCall = { id: block.id, name: block.name, input: block.input, status: outcome.ok ? 'ok' : 'error', result: outcome.result };
          if (outcome.undo) toolCall.undo = outcome.undo;
          toolCalls.push(toolCall);
          saveToolCalls(redis, messageId, toolCalls).catch(() => undefined);
          broadcaster.toUser(userId, 'chat:tool', { conversationId, messageId, toolCall });
          results.push({ type: 'tool_result', tool_use_id: block.id, content: JSON.stringify(outcome.result), is_error: !outcome.ok });
        }
        rounds.push({ role: 'assistant', content: round.content }, { role: 'user', content: results });
        apart = true;
        if (entry.abort.signal.aborted || ++toolRounds >= MAX_TOOL_ROUNDS) break;
      }
    } catch (err) {
      flush();
      if (entry.reason === 'cancelled') status = 'cancelled';
      else if (entry.reason === 'shutdown') status = 'interrupted';
      else {
        status = 'error';
        const { kind, message } = describeUpstreamError(err, entry.reason === 'timeout');
        hooks.onUpstreamError(kind);
        error = { code: ErrorCode.UPSTREAM, message };
        logger.warn({ kind, messageId, err: (err as Error).message }, 'assistant upstream failed');
      }
    } finally {
      clearTimeout(idleTimer);
      entry.ending = true;
      flush();
    }
    if (entry.reason === 'cancelled' && status === 'complete') status = 'cancelled';

    await this.deps.views.endStreaming(
      messageId,
      { status, content: deltas.join(''), lastSeq: deltas.length > 0 ? deltas.length - 1 : null, toolCalls, usage, model, stopReason, error },
      { touchConversation: true },
    );
  }
}

const CONTEXT_TOO_LONG = 'This conversation is too long for the assistant: edit an earlier message or start a new conversation.';

/** Sorts an upstream failure into a metric kind and a fixed message for the user. */
export function describeUpstreamError(err: unknown, timedOut: boolean): { kind: string; message: string } {
  if (timedOut) return { kind: 'timeout', message: 'The assistant stopped responding; please try again.' };
  if (isPromptTooLong(err)) return { kind: 'context_window', message: CONTEXT_TOO_LONG };
  if (err instanceof Anthropic.APIError && typeof err.status === 'number') {
    if (err.status === 529) return { kind: 'overloaded', message: 'The assistant is overloaded right now; please try again in a moment.' };
    if (err.status === 429) return { kind: 'rate_limited', message: 'The assistant is receiving too many requests; please try again shortly.' };
    return { kind: `status_${err.status >= 500 ? '5xx' : '4xx'}`, message: `The assistant service failed (status ${err.status}).` };
  }
  if (err instanceof Anthropic.APIConnectionTimeoutError) return { kind: 'timeout', message: 'The assistant did not answer in time; please try again.' };
  if (err instanceof Anthropic.APIConnectionError) return { kind: 'connection', message: 'Could not reach the assistant service; please try again.' };
  return { kind: 'stream', message: 'The answer was cut off; please try again.' };
}
