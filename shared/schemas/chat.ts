import { z } from 'zod';
import { limits } from '../limits.js';
import type { ErrorCode } from '../errors.js';
import { id, pageLimit, text, timestamp } from './common.js';

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

import { messageStatuses } from '../constants.js';

export { messageStatuses };
export type MessageStatus = (typeof messageStatuses)[number];

export interface ToolCall {
  id: string;
  name: string;
  input: unknown;
  status: 'ok' | 'error';
  result: unknown;
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
  usage: { inputTokens: number; outputTokens: number } | null;
  model: string | null;
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
