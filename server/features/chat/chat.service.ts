/**
 * Conversations and messages (PROTOCOL §6.2): send (CHAT-1), cancel (CHAT-5),
 * history with the text so far of a streaming answer (CHAT-3), lists, rename,
 * delete, and the sweeper that marks answers of dead nodes `interrupted` (CHAT-7).
 */
import { randomUUID } from 'node:crypto';
import { UniqueConstraintViolationException, type MikroORM } from '@mikro-orm/postgresql';
import { appError, ErrorCode } from '../../errors.js';
import type { ChatSend, Conversation, Message } from '../../../shared/schemas/chat.js';
import type { Logger } from '../../logger.js';
import type { Redis } from '../../redis.js';
import type { Broadcaster } from '../../realtime/rooms.js';
import { ConversationSchema, MessageSchema, type ConversationEntity, type MessageEntity } from './chat.entity.js';
import { Assistant, heartbeatKey, HEARTBEAT_TTL_MS } from './assistant.js';
import { bufferKeys, readBuffer } from './stream-buffer.js';
import { toConversation, toMessage, type ChatViews } from './views.js';
import type { ExportContributor } from '../account/account.service.js';
import { nodeLastSeen } from '../../realtime/nodes.js';

/** At most this many answers generate at once for one user (cost control). */
export const MAX_GENERATIONS_PER_USER = 2;
const TITLE_LENGTH = 60;

export interface ChatService extends ExportContributor {
  send(userId: string, input: ChatSend): Promise<{ conversationId: string; userMessage: Message; assistantMessageId: string }>;
  cancel(userId: string, messageId: string): Promise<{ message: Message }>;
  history(userId: string, q: { conversationId: string; before?: string | undefined; limit?: number | undefined }): Promise<{ messages: Message[]; hasMore: boolean }>;
  listConversations(userId: string, q: { before?: string | undefined; limit?: number | undefined }): Promise<{ conversations: Conversation[] }>;
  rename(userId: string, id: string, title: string): Promise<{ conversation: Conversation }>;
  remove(userId: string, id: string): Promise<{ id: string }>;
  /** Marks streaming answers whose node stopped beating as interrupted; returns how many. */
  sweep(): Promise<number>;
}

export function titleFrom(content: string): string {
  const flat = content.replace(/\s+/g, ' ').trim();
  if (flat.length <= TITLE_LENGTH) return flat;
  const cut = flat.slice(0, TITLE_LENGTH);
  const space = cut.lastIndexOf(' ');
  return `${(space > 20 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

export function createChatService(deps: {
  orm: MikroORM;
  redis: Redis;
  broadcaster: Broadcaster;
  assistant: Assistant;
  views: ChatViews;
  logger: Logger;
  nodeId: string;
  model: string;
}): ChatService {
  const { orm, redis, broadcaster, assistant, views, logger } = deps;

  /** A streaming message with the text so far from Redis (CHAT-3). */
  async function withBuffer(m: MessageEntity): Promise<Message> {
    const view = toMessage(m);
    if (m.status !== 'streaming') return view;
    const buffer = await readBuffer(redis, m.id);
    return buffer ? { ...view, content: buffer.content, lastSeq: buffer.lastSeq, toolCalls: buffer.toolCalls } : view;
  }

  async function ownedConversation(userId: string, id: string) {
    const conversation = await orm.em.fork().findOne(ConversationSchema, { id, user: userId });
    if (!conversation) throw appError(ErrorCode.NOT_FOUND, { message: 'Conversation not found' });
    return conversation;
  }

  /** CHAT-1: a retried `id` returns the first result; other content under the same id is CONFLICT. */
  async function replay(userId: string, input: ChatSend) {
    if (!input.id) return undefined;
    const em = orm.em.fork();
    const existing = await em.findOne(MessageSchema, input.id);
    if (!existing) return undefined;
    if (existing.user.id !== userId || existing.role !== 'user' || existing.content !== input.content) {
      throw appError(ErrorCode.CONFLICT, { message: 'This message id was already used for another message' });
    }
    const reply = await em.findOne(MessageSchema, { replyTo: existing.id });
    return { conversationId: existing.conversation.id, userMessage: toMessage(existing), assistantMessageId: reply?.id ?? '' };
  }

  async function markEnded(messageId: string, status: 'interrupted' | 'cancelled'): Promise<MessageEntity | undefined> {
    const buffer = await readBuffer(redis, messageId);
    const em = orm.em.fork();
    const changed = await em.nativeUpdate(
      MessageSchema,
      { id: messageId, status: 'streaming' },
      buffer ? { status, content: buffer.content, lastSeq: buffer.lastSeq, toolCalls: buffer.toolCalls } : { status },
    );
    await redis.del(...bufferKeys(messageId), heartbeatKey(messageId)).catch(() => undefined);
    if (changed === 0) return undefined;
    const message = await em.findOneOrFail(MessageSchema, messageId);
    broadcaster.toUser(message.user.id, 'chat:done', { conversationId: message.conversation.id, message: toMessage(message) });
    await views.announceConversation(message.user.id, message.conversation.id);
    return message;
  }

  /**
   * Whether a streaming message may still be alive. A node of another cluster
   * (never seen in this Redis) is not ours to judge; a node of ours whose
   * heartbeat for the message expired is dead.
   */
  async function mayBeAlive(messageId: string, nodeId: string | null | undefined): Promise<boolean> {
    try {
      if (nodeId && (await nodeLastSeen(redis, nodeId)) === null) return true;
      return (await redis.exists(heartbeatKey(messageId))) === 1;
    } catch {
      return true; // cannot tell while Redis is away: assume alive
    }
  }

  // A cancel that reached another node is carried out where the generation runs.
  broadcaster.onNodeEvent('chat:cancel', (messageId) => {
    void assistant.stop(messageId, 'cancelled');
  });

  return {
    async send(userId, input) {
      const again = await replay(userId, input);
      if (again) return again;
      const em = orm.em.fork();
      let created: { conversation: ConversationEntity; userMessage: MessageEntity; assistant: MessageEntity };
      try {
        created = await em.transactional(async (tem) => {
          // The user row lock serialises a user's sends, so the limits below cannot be raced.
          await tem.execute('select id from users where id = ? for update', [userId]);
          const streaming = await tem.find(MessageSchema, { user: userId, status: 'streaming' }, { fields: ['conversation'] });
          const now = new Date();
          let conversation;
          if (input.conversationId) {
            conversation = await tem.findOne(ConversationSchema, { id: input.conversationId, user: userId });
            if (!conversation) throw appError(ErrorCode.NOT_FOUND, { message: 'Conversation not found' });
            if (streaming.some((m) => m.conversation.id === input.conversationId)) {
              throw appError(ErrorCode.CONFLICT, { message: 'An answer is already being generated in this conversation' });
            }
          }
          if (streaming.length >= MAX_GENERATIONS_PER_USER) {
            throw appError(ErrorCode.CONFLICT, { message: `At most ${MAX_GENERATIONS_PER_USER} answers can be generated at once` });
          }
          conversation ??= tem.create(ConversationSchema, { id: randomUUID(), user: userId, title: titleFrom(input.content), createdAt: now, updatedAt: now });
          conversation.updatedAt = now;
          const userMessage = tem.create(MessageSchema, {
            id: input.id ?? randomUUID(),
            conversation,
            user: userId,
            role: 'user',
            content: input.content,
            status: 'complete',
            toolCalls: [],
            createdAt: now,
            updatedAt: now,
          });
          const reply = tem.create(MessageSchema, {
            id: randomUUID(),
            conversation,
            user: userId,
            role: 'assistant',
            content: '',
            status: 'streaming',
            toolCalls: [],
            replyTo: userMessage.id,
            nodeId: deps.nodeId,
            model: deps.model,
            // a millisecond later, so history order is stable
            createdAt: new Date(now.getTime() + 1),
            updatedAt: now,
          });
          return { conversation, userMessage, assistant: reply };
        });
      } catch (err) {
        if (err instanceof UniqueConstraintViolationException) {
          const raced = await replay(userId, input);
          if (raced) return raced;
          throw appError(ErrorCode.CONFLICT, { message: 'This message id was already used' });
        }
        throw err;
      }
      const conversationId = created.conversation.id;
      // Known without asking the database again: it now has a streaming answer.
      broadcaster.toUser(userId, 'conversation:changed', { conversation: toConversation(created.conversation, true) });
      broadcaster.toUser(userId, 'chat:message', { message: toMessage(created.userMessage) });
      broadcaster.toUser(userId, 'chat:message', { message: toMessage(created.assistant) });
      void assistant.start({ userId, conversationId, assistantMessageId: created.assistant.id });
      return { conversationId, userMessage: toMessage(created.userMessage), assistantMessageId: created.assistant.id };
    },

    async cancel(userId, messageId) {
      const em = orm.em.fork();
      const message = await em.findOne(MessageSchema, { id: messageId, user: userId });
      if (!message) throw appError(ErrorCode.NOT_FOUND, { message: 'Message not found' });
      if (message.status !== 'streaming') return { message: toMessage(message) };
      if (!(await assistant.stop(messageId, 'cancelled'))) {
        broadcaster.toOtherNodes('chat:cancel', messageId);
        const deadline = Date.now() + 5_000;
        while (Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 100));
          const current = await orm.em.fork().findOne(MessageSchema, messageId);
          if (!current || current.status !== 'streaming') break;
        }
        // Nobody ran it any more (its node died): end it here.
        await markEnded(messageId, 'cancelled');
      }
      const final = await orm.em.fork().findOneOrFail(MessageSchema, messageId);
      return { message: toMessage(final) };
    },

    async history(userId, { conversationId, before, limit = 50 }) {
      await ownedConversation(userId, conversationId);
      const em = orm.em.fork();
      let cursor: Date | undefined;
      if (before) {
        const anchor = await em.findOne(MessageSchema, { id: before, conversation: conversationId });
        if (!anchor) throw appError(ErrorCode.NOT_FOUND, { message: 'Message not found' });
        cursor = anchor.createdAt;
      }
      const rows = await em.find(
        MessageSchema,
        cursor ? { conversation: conversationId, createdAt: { $lt: cursor } } : { conversation: conversationId },
        { orderBy: { createdAt: 'desc', id: 'desc' }, limit: limit + 1 },
      );
      const hasMore = rows.length > limit;
      const page = rows.slice(0, limit).reverse();
      return { messages: await Promise.all(page.map(withBuffer)), hasMore };
    },

    async listConversations(userId, { before, limit = 50 }) {
      const em = orm.em.fork();
      const rows = await em.find(
        ConversationSchema,
        before ? { user: userId, updatedAt: { $lt: new Date(before) } } : { user: userId },
        { orderBy: { updatedAt: 'desc', id: 'desc' }, limit },
      );
      const generating = await views.generatingIn(rows.map((c) => c.id));
      return { conversations: rows.map((c) => toConversation(c, generating.has(c.id))) };
    },

    async rename(userId, id, title) {
      const em = orm.em.fork();
      const conversation = await em.findOne(ConversationSchema, { id, user: userId });
      if (!conversation) throw appError(ErrorCode.NOT_FOUND, { message: 'Conversation not found' });
      conversation.title = title.trim();
      conversation.updatedAt = new Date();
      await em.flush();
      const generating = (await views.generatingIn([id])).has(id);
      const view = toConversation(conversation, generating);
      broadcaster.toUser(userId, 'conversation:changed', { conversation: view });
      return { conversation: view };
    },

    async remove(userId, id) {
      await ownedConversation(userId, id);
      const em = orm.em.fork();
      const streaming = await em.find(MessageSchema, { conversation: id, status: 'streaming' });
      for (const m of streaming) {
        if (!(await assistant.stop(m.id, 'cancelled'))) broadcaster.toOtherNodes('chat:cancel', m.id);
      }
      await em.nativeDelete(ConversationSchema, { id, user: userId });
      broadcaster.toUser(userId, 'conversation:removed', { id });
      return { id };
    },

    async sweep() {
      const em = orm.em.fork();
      const stale = await em.find(
        MessageSchema,
        { status: 'streaming', createdAt: { $lt: new Date(Date.now() - HEARTBEAT_TTL_MS) } },
        { fields: ['id', 'nodeId'], limit: 500 },
      );
      let ended = 0;
      for (const m of stale) {
        if (assistant.isRunningHere(m.id)) continue;
        // A message left by an earlier run of this very node cannot be alive.
        const alive = m.nodeId === deps.nodeId ? false : await mayBeAlive(m.id, m.nodeId);
        if (alive) continue;
        if (await markEnded(m.id, 'interrupted')) {
          ended++;
          logger.warn({ messageId: m.id, nodeId: m.nodeId }, 'answer interrupted: its node stopped');
        }
      }
      return ended;
    },

    async exportFor(userId) {
      const em = orm.em.fork();
      const conversations = await em.find(ConversationSchema, { user: userId }, { orderBy: { createdAt: 'asc' } });
      const messages = await em.find(MessageSchema, { user: userId }, { orderBy: { createdAt: 'asc' } });
      return {
        conversations: conversations.map((c) => toConversation(c, messages.some((m) => m.conversation.id === c.id && m.status === 'streaming'))),
        messages: messages.map(toMessage),
      };
    },
  };
}

/** Runs the sweeper every `intervalMs` (CHAT-7: interrupted within 60 s). */
export function startStreamSweeper(chat: ChatService, logger: Logger, intervalMs = 10_000): () => void {
  const tick = () => chat.sweep().catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'stream sweep failed'));
  const first = setTimeout(tick, 1_000);
  const timer = setInterval(tick, intervalMs);
  first.unref();
  timer.unref();
  return () => {
    clearTimeout(first);
    clearInterval(timer);
  };
}
