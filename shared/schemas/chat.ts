import { z } from 'zod';
import { limits } from '../limits.js';
import type { ErrorCode } from '../errors.js';
import { id, pageLimit, text, timestamp } from './common.js';
import type { TaskPatch } from './tasks.js';

export const chatSend = z.strictObject({
  conversationId: id.optional(),
  id: id.optional(),
  content: text(1, limits.chatContentMax).refine((s) => s.trim().length > 0, 'Must not be blank'),
});
export type ChatSend = z.infer<typeof chatSend>;
export const chatCancel = z.strictObject({ messageId: id });
export const chatHistory = z.strictObject({ conversationId: id, before: id.optional(), limit: pageLimit.optional() });
export const conversationList = z.strictObject({ before: timestamp.optional(), limit: pageLimit.optional() });
export const conversationRename = z.strictObject({
  id,
  title: text(1, limits.conversationTitleMax).refine((s) => s.trim().length > 0, 'Must not be blank'),
});
export const conversationDelete = z.strictObject({ id });

/** CHAT-10: a new text for one of the user's own messages; everything after it goes and a new answer streams. */
export const chatEdit = z.strictObject({
  messageId: id,
  content: text(1, limits.chatContentMax).refine((s) => s.trim().length > 0, 'Must not be blank'),
});
/** CHAT-10: the conversation's last assistant message, replaced by a new answer. */
export const chatRegenerate = z.strictObject({ messageId: id });
/** CHAT-13: the last assistant message, stopped at `max_tokens`, goes on. */
export const chatContinue = z.strictObject({ messageId: id });

/** CHAT-13: why an answer stopped (the Messages API's `stop_reason`), null while streaming or before 1.1. */
export const stopReasons = ['end_turn', 'max_tokens', 'tool_use', 'stop_sequence', 'pause_turn', 'refusal', 'model_context_window_exceeded'] as const;
export type StopReason = (typeof stopReasons)[number];

/** Tokens of one answer; the cache counts are 0 when nothing was read from or written to the prompt cache (CHAT-12). */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
}

export const searchKinds = ['task', 'message', 'conversation'] as const;
export type SearchKind = (typeof searchKinds)[number];
/** CHAT-11: full-text search over the user's own tasks, messages and conversation titles. */
export const search = z.strictObject({
  query: text(1, 500).refine((s) => s.trim().length > 0, 'Must not be blank'),
  kinds: z.array(z.enum(searchKinds)).min(1).max(3).optional(),
  limit: z.int().min(1).max(50).optional(),
});
export type SearchQuery = z.infer<typeof search>;

export interface SearchResult {
  kind: SearchKind;
  id: string;
  /** the conversation of a message or conversation hit; null for a task */
  conversationId: string | null;
  /** the task's or conversation's title; for a message, its conversation's title */
  title: string;
  /** a short excerpt with the matched words marked «…» */
  snippet: string;
  /** ISO timestamp: the task's or message's last change, the conversation's last message */
  at: string;
  rank: number;
}

import { messageStatuses } from '../constants.js';

export { messageStatuses };
export type MessageStatus = (typeof messageStatuses)[number];

export interface ToolCall {
  id: string;
  name: string;
  input: unknown;
  status: 'ok' | 'error';
  result: unknown;
  /** (1.1, CHAT-15) how to revert the task change this call made; absent when it changed no task */
  undo?: ToolUndo;
}

/** CHAT-15: how long after a tool's change clients offer its Undo, in ms (in `limits`, which the client imports without zod). */
export const undoWindowMs = limits.undoWindowMs;

/**
 * CHAT-15: the ordinary task events that revert one tool call's task change,
 * sent one after another, each waiting for the previous one's ack. Every
 * payload carries the `expectedVersion` the task has after the tool's change
 * (and the steps before it), so a change made since is CONFLICT, never
 * overwritten.
 */
export interface ToolUndo {
  /** when the tool's change was made (the server's clock); clients offer the Undo for 30 s (`undoWindowMs`) after it */
  at: string;
  steps: UndoStep[];
}

/** One task event of an undo, with its payload as it is sent. */
export type UndoStep = UndoUpdate | UndoById;

/** An undo's `task:update`: the fields the tool changed, with their values before it. */
export interface UndoUpdate {
  event: 'task:update';
  payload: { id: string; expectedVersion: number; patch: TaskPatch };
}

/** An undo's `task:complete`, `task:delete`, `task:restore` or `task:purge`. */
export interface UndoById {
  event: 'task:complete' | 'task:delete' | 'task:restore' | 'task:purge';
  payload: { id: string; expectedVersion: number };
}

export interface Message {
  id: string;
  conversationId: string;
  role: 'user' | 'assistant';
  content: string;
  status: MessageStatus;
  /** seq of the last delta, null before the first */
  lastSeq: number | null;
  toolCalls: ToolCall[];
  usage: Usage | null;
  model: string | null;
  /** (1.1) why the answer stopped; null for user messages and while streaming */
  stopReason: StopReason | null;
  error: { code: ErrorCode; message: string } | null;
  createdAt: string;
}

export interface Conversation {
  id: string;
  title: string;
  createdAt: string;
  updatedAt: string;
  generating: boolean;
}

export interface ChatDelta {
  conversationId: string;
  messageId: string;
  seq: number;
  text: string;
}
