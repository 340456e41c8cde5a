/** Wire shapes of conversations and messages, and the announcements that keep tabs in step. */
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Conversation, Message } from '../../../shared/schemas/chat.js';
import type { Broadcaster } from '../../realtime/rooms.js';
import { ConversationSchema, MessageSchema, type ConversationEntity, type MessageEntity } from './chat.entity.js';

export function toMessage(m: MessageEntity): Message {
  return {
    id: m.id,
    conversationId: m.conversation.id,
    role: m.role,
    content: m.content,
    status: m.status,
    lastSeq: m.lastSeq ?? null,
    toolCalls: m.toolCalls ?? [],
    usage: m.usage ?? null,
    model: m.model ?? null,
    error: m.error ?? null,
    createdAt: m.createdAt.toISOString(),
  };
}

export function toConversation(c: ConversationEntity, generating: boolean): Conversation {
  return { id: c.id, title: c.title, createdAt: c.createdAt.toISOString(), updatedAt: c.updatedAt.toISOString(), generating };
}

export interface ChatViews {
  /** Ids of these conversations that have a streaming message. */
  generatingIn(conversationIds: string[]): Promise<Set<string>>;
  touchConversation(conversationId: string): Promise<void>;
  /** Broadcasts `conversation:changed` with the current `generating` flag. */
  announceConversation(userId: string, conversationId: string): Promise<void>;
}

export function createChatViews(deps: { orm: MikroORM; broadcaster: Broadcaster }): ChatViews {
  const { orm, broadcaster } = deps;
  const views: ChatViews = {
    async generatingIn(conversationIds) {
      if (conversationIds.length === 0) return new Set();
      const rows = await orm.em
        .fork()
        .find(MessageSchema, { conversation: { $in: conversationIds }, status: 'streaming' }, { fields: ['conversation'] });
      return new Set(rows.map((r) => r.conversation.id));
    },
    async touchConversation(conversationId) {
      await orm.em.fork().nativeUpdate(ConversationSchema, { id: conversationId }, { updatedAt: new Date() });
    },
    async announceConversation(userId, conversationId) {
      const conversation = await orm.em.fork().findOne(ConversationSchema, { id: conversationId, user: userId });
      if (!conversation) return;
      const generating = (await views.generatingIn([conversationId])).has(conversationId);
      broadcaster.toUser(userId, 'conversation:changed', { conversation: toConversation(conversation, generating) });
    },
  };
  return views;
}
