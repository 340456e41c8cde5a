import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { UserSchema } from '../auth/user.entity.js';
import { searchIndex, tsvector } from '../search/search.entity.js';
import type { ErrorCode } from '../../../shared/errors.js';
import { stopReasons, type MessageStatus, type ToolCall, type Usage } from '../../../shared/schemas/chat.js';

export const ConversationSchema = defineEntity({
  name: 'Conversation',
  tableName: 'conversations',
  properties: {
    id: p.uuid().primary(),
    user: p.manyToOne(UserSchema).deleteRule('cascade'),
    title: p.string().length(200),
    createdAt: p.datetime().onCreate(() => new Date()),
    /** bumped with every message; lists are ordered by it */
    updatedAt: p.datetime().onCreate(() => new Date()),
    /** (1.1) CHAT-11: the words of the title; computed by PostgreSQL, never written */
    search: p.string().columnType('tsvector').generated(tsvector(['(title)::text', 'A'])).lazy().hidden(),
  },
  indexes: [{ properties: ['user', 'updatedAt'] }, searchIndex('conversations')],
});
export type ConversationEntity = InferEntity<typeof ConversationSchema>;

export const MessageSchema = defineEntity({
  name: 'Message',
  tableName: 'messages',
  properties: {
    id: p.uuid().primary(),
    conversation: p.manyToOne(ConversationSchema).deleteRule('cascade'),
    /** the owner, for idempotent `chat:send` ids and ownership checks without a join */
    user: p.manyToOne(UserSchema).deleteRule('cascade'),
    role: p.enum(['user', 'assistant'] as const),
    content: p.text().default(''),
    status: p.enum(['complete', 'streaming', 'cancelled', 'error', 'interrupted'] as const).index(),
    /** seq of the last delta of an assistant message */
    lastSeq: p.integer().nullable(),
    toolCalls: p.json<ToolCall[]>().default('[]'),
    /** cacheReadTokens and cacheCreationTokens are absent in answers stored before 1.1 */
    usage: p.json<Usage>().nullable(),
    model: p.string().length(100).nullable(),
    /** CHAT-13: the Messages API's stop_reason of the answer's last round; null for user messages, while streaming, and when none came */
    stopReason: p.enum([...stopReasons]).nullable(),
    error: p.json<{ code: ErrorCode; message: string }>().nullable(),
    /** for an assistant message: the user message it answers */
    replyTo: p.uuid().nullable(),
    /** the node that runs (or ran) the generation */
    nodeId: p.string().length(100).nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
    /** (1.1) CHAT-11: the words of the content; computed by PostgreSQL, never written */
    search: p.string().columnType('tsvector').generated(tsvector(['content', 'B'])).lazy().hidden(),
  },
  indexes: [{ properties: ['conversation', 'createdAt'] }, { properties: ['user', 'status'] }, searchIndex('messages')],
});
export type MessageEntity = InferEntity<typeof MessageSchema>;
export type { MessageStatus };
