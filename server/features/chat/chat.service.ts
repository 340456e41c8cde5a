/**
 * Conversations and messages (PROTOCOL §6.2): send (CHAT-1), cancel (CHAT-5),
 * history with the text so far of a streaming answer (CHAT-3), lists, rename,
 * delete, and the sweeper that marks answers of dead nodes `interrupted` (CHAT-7).
 */
import { randomUUID } from 'node:crypto';
import { UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { appError, ErrorCode } from '../../errors.js';
import type { ChatSend, Conversation, Message } from '../../../shared/schemas/chat.js';
import type { SqlPool, Statement } from '../../db/sql.js';
import type { Logger } from '../../logger.js';
import type { Redis } from '../../redis.js';
import type { Broadcaster } from '../../realtime/rooms.js';
import { Assistant, HEARTBEAT_TTL_MS, type GenerationJob } from './assistant.js';
import type { HistoryMessage } from './prompt.js';
import { listStatement, wireTasks } from '../tasks/tasks.service.js';
import { heartbeatKey, readBuffer } from './stream-buffer.js';
import { conversationColumns, messageColumns, toConversation, toMessage, type ChatViews, type ConversationRow, type MessageRow } from './views.js';
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

const insertMessageSql = `insert into messages (id, conversation_id, user_id, role, content, status, tool_calls, reply_to, node_id, model, created_at, updated_at)
  values ($1, $2, $3, $4, $5, $6, '[]', $7, $8, $9, $10, $11) returning ${messageColumns}`;

export function createChatService(deps: {
  sql: SqlPool;
  redis: Redis;
  broadcaster: Broadcaster;
  assistant: Assistant;
  views: ChatViews;
  logger: Logger;
  nodeId: string;
  model: string;
}): ChatService {
  const { sql, redis, broadcaster, assistant, views, logger } = deps;

  /** A streaming message with the text so far from Redis (CHAT-3). */
  async function withBuffer(m: MessageRow): Promise<Message> {
    const view = toMessage(m);
    if (m.status !== 'streaming') return view;
    const buffer = await readBuffer(redis, m.id);
    return buffer ? { ...view, content: buffer.content, lastSeq: buffer.lastSeq, toolCalls: buffer.toolCalls } : view;
  }

  async function message(id: string, userId?: string): Promise<MessageRow | undefined> {
    const rows = userId
      ? await sql.query<MessageRow>(`select ${messageColumns} from messages where id = $1 and user_id = $2`, [id, userId])
      : await sql.query<MessageRow>(`select ${messageColumns} from messages where id = $1`, [id]);
    return rows[0];
  }

  async function ownedConversation(userId: string, id: string): Promise<void> {
    const rows = await sql.query<{ id: string }>('select id from conversations where id = $1 and user_id = $2', [id, userId]);
    if (!rows[0]) throw appError(ErrorCode.NOT_FOUND, { message: 'Conversation not found' });
  }

  /** CHAT-1: the message a retried `id` names, with the id of its answer. */
  const replayStatement = (id: string) => ({
    text: `select ${messageColumns}, (select r.id from messages r where r.conversation_id = messages.conversation_id and r.reply_to = messages.id limit 1) as reply_id
         from messages where id = $1`,
    params: [id],
  });

  /** CHAT-1: a retried `id` returns the first result; other content under the same id is CONFLICT. */
  function replayOf(userId: string, input: ChatSend, existing: (MessageRow & { reply_id: string | null }) | undefined) {
    if (!existing) return undefined;
    if (existing.user_id !== userId || existing.role !== 'user' || existing.content !== input.content) {
      throw appError(ErrorCode.CONFLICT, { message: 'This message id was already used for another message' });
    }
    return { conversationId: existing.conversation_id, userMessage: toMessage(existing), assistantMessageId: existing.reply_id ?? '' };
  }

  async function markEnded(messageId: string, status: 'interrupted' | 'cancelled'): Promise<MessageRow | undefined> {
    const buffer = await readBuffer(redis, messageId);
    return views.endStreaming(messageId, buffer ? { status, content: buffer.content, lastSeq: buffer.lastSeq, toolCalls: buffer.toolCalls } : { status });
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
      type Replay = NonNullable<ReturnType<typeof replayOf>>;
      type Created = { conversation: ConversationRow; userMessage: MessageRow; reply: MessageRow; prompt: GenerationJob['prompt'] };
      let outcome: { replay: Replay } | { created: Created };
      try {
        // The user row lock serialises a user's sends, so the limits below cannot be raced. Everything the
        // answer's prompt needs is read with the lock, in the BEGIN's round trip (the user, the history, the
        // open tasks), and the inserts go with the COMMIT: a send is two round trips, and the stream starts with no read.
        const reads: Record<string, Statement> = {
          user: { text: 'select full_name, timezone from users where id = $1 for update', params: [userId] },
          streaming: { text: "select conversation_id from messages where user_id = $1 and status = 'streaming'", params: [userId] },
          ...(input.id ? { replay: replayStatement(input.id) } : {}),
          ...(input.conversationId
            ? {
                conversation: { text: 'select id, title, created_at, updated_at from conversations where id = $1 and user_id = $2', params: [input.conversationId, userId] },
                history: { text: 'select role, content from messages where conversation_id = $1 order by created_at asc, id asc', params: [input.conversationId] },
              }
            : {}),
          openTasks: listStatement(userId, 'active'),
        };
        const names = Object.keys(reads);
        outcome = await sql.transaction(async (tx, rows) => {
          const read = Object.fromEntries(names.map((name, i) => [name, rows[i]!])) as Record<string, unknown[] | undefined>;
          const replay = replayOf(userId, input, read.replay?.[0] as (MessageRow & { reply_id: string | null }) | undefined);
          if (replay) return { replay };
          const user = read.user![0] as { full_name: string; timezone: string } | undefined;
          if (!user) throw appError(ErrorCode.NOT_FOUND, { message: 'User not found' });
          const streaming = read.streaming as { conversation_id: string }[];
          const now = new Date();
          let conversation: ConversationRow | undefined;
          if (input.conversationId) {
            const found = (read.conversation as Omit<ConversationRow, 'generating'>[])[0];
            if (!found) throw appError(ErrorCode.NOT_FOUND, { message: 'Conversation not found' });
            if (streaming.some((m) => m.conversation_id === input.conversationId)) {
              throw appError(ErrorCode.CONFLICT, { message: 'An answer is already being generated in this conversation' });
            }
            conversation = { ...found, updated_at: now, generating: true };
          }
          if (streaming.length >= MAX_GENERATIONS_PER_USER) {
            throw appError(ErrorCode.CONFLICT, { message: `At most ${MAX_GENERATIONS_PER_USER} answers can be generated at once` });
          }
          const statements = [];
          if (conversation) {
            statements.push({ text: 'update conversations set updated_at = $2 where id = $1', params: [conversation.id, now] });
          } else {
            conversation = { id: randomUUID(), title: titleFrom(input.content), created_at: now, updated_at: now, generating: true };
            statements.push({
              text: 'insert into conversations (id, user_id, title, created_at, updated_at) values ($1, $2, $3, $4, $5)',
              params: [conversation.id, userId, conversation.title, now, now],
            });
          }
          const userMessageId = input.id ?? randomUUID();
          const replyId = randomUUID();
          const base = { conversation_id: conversation.id, user_id: userId, tool_calls: [], usage: null, error: null, last_seq: null };
          statements.push(
            { text: insertMessageSql, params: [userMessageId, conversation.id, userId, 'user', input.content, 'complete', null, null, null, now, now] },
            // a millisecond later, so history order is stable
            { text: insertMessageSql, params: [replyId, conversation.id, userId, 'assistant', '', 'streaming', userMessageId, deps.nodeId, deps.model, new Date(now.getTime() + 1), now] },
          );
          tx.atCommit(statements);
          return {
            created: {
              conversation,
              userMessage: { ...base, id: userMessageId, role: 'user', content: input.content, status: 'complete', model: null, node_id: null, created_at: now },
              reply: { ...base, id: replyId, role: 'assistant', content: '', status: 'streaming', model: deps.model, node_id: deps.nodeId, created_at: new Date(now.getTime() + 1) },
              prompt: {
                user: { fullName: user.full_name, timezone: user.timezone },
                history: [...((read.history ?? []) as HistoryMessage[]), { role: 'user', content: input.content }],
                openTasks: wireTasks(read.openTasks),
              },
            },
          };
        }, Object.values(reads));
      } catch (err) {
        if (err instanceof UniqueConstraintViolationException) {
          // another user's send took this id between our read and our insert
          if (input.id) {
            const statement = replayStatement(input.id);
            const [existing] = await sql.query<MessageRow & { reply_id: string | null }>(statement.text, statement.params);
            const raced = replayOf(userId, input, existing);
            if (raced) return raced;
          }
          throw appError(ErrorCode.CONFLICT, { message: 'This message id was already used' });
        }
        throw err;
      }
      if ('replay' in outcome) return outcome.replay;
      const created = outcome.created;
      const conversationId = created.conversation.id;
      // Known without asking the database again: it now has a streaming answer.
      broadcaster.toUser(userId, 'conversation:changed', { conversation: toConversation(created.conversation) });
      broadcaster.toUser(userId, 'chat:message', { message: toMessage(created.userMessage) });
      broadcaster.toUser(userId, 'chat:message', { message: toMessage(created.reply) });
      void assistant.start({ userId, conversationId, assistantMessageId: created.reply.id, prompt: created.prompt });
      return { conversationId, userMessage: toMessage(created.userMessage), assistantMessageId: created.reply.id };
    },

    async cancel(userId, messageId) {
      const found = await message(messageId, userId);
      if (!found) throw appError(ErrorCode.NOT_FOUND, { message: 'Message not found' });
      if (found.status !== 'streaming') return { message: toMessage(found) };
      if (!(await assistant.stop(messageId, 'cancelled'))) {
        broadcaster.toOtherNodes('chat:cancel', messageId);
        const deadline = Date.now() + 5_000;
        while (Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 100));
          const current = await message(messageId);
          if (!current || current.status !== 'streaming') break;
        }
        // Nobody ran it any more (its node died): end it here.
        await markEnded(messageId, 'cancelled');
      }
      const final = await message(messageId);
      if (!final) throw appError(ErrorCode.NOT_FOUND, { message: 'Message not found' });
      return { message: toMessage(final) };
    },

    async history(userId, { conversationId, before, limit = 50 }) {
      await ownedConversation(userId, conversationId);
      let rows: MessageRow[];
      if (before) {
        const [anchor] = await sql.query<{ created_at: Date }>('select created_at from messages where id = $1 and conversation_id = $2', [before, conversationId]);
        if (!anchor) throw appError(ErrorCode.NOT_FOUND, { message: 'Message not found' });
        rows = await sql.query<MessageRow>(
          `select ${messageColumns} from messages where conversation_id = $1 and created_at < $2 order by created_at desc, id desc limit $3`,
          [conversationId, anchor.created_at, limit + 1],
        );
      } else {
        rows = await sql.query<MessageRow>(`select ${messageColumns} from messages where conversation_id = $1 order by created_at desc, id desc limit $2`, [conversationId, limit + 1]);
      }
      const hasMore = rows.length > limit;
      const page = rows.slice(0, limit).reverse();
      return { messages: await Promise.all(page.map(withBuffer)), hasMore };
    },

    async listConversations(userId, { before, limit = 50 }) {
      const rows = before
        ? await sql.query<ConversationRow>(`select ${conversationColumns} from conversations c where c.user_id = $1 and c.updated_at < $2 order by c.updated_at desc, c.id desc limit $3`, [userId, new Date(before), limit])
        : await sql.query<ConversationRow>(`select ${conversationColumns} from conversations c where c.user_id = $1 order by c.updated_at desc, c.id desc limit $2`, [userId, limit]);
      return { conversations: rows.map(toConversation) };
    },

    async rename(userId, id, title) {
      const [row] = await sql.query<ConversationRow>(`update conversations c set title = $3, updated_at = $4 where c.id = $1 and c.user_id = $2 returning ${conversationColumns}`, [
        id,
        userId,
        title.trim(),
        new Date(),
      ]);
      if (!row) throw appError(ErrorCode.NOT_FOUND, { message: 'Conversation not found' });
      const view = toConversation(row);
      broadcaster.toUser(userId, 'conversation:changed', { conversation: view });
      return { conversation: view };
    },

    async remove(userId, id) {
      await ownedConversation(userId, id);
      const streaming = await sql.query<{ id: string }>("select id from messages where conversation_id = $1 and status = 'streaming'", [id]);
      for (const m of streaming) {
        if (!(await assistant.stop(m.id, 'cancelled'))) broadcaster.toOtherNodes('chat:cancel', m.id);
      }
      await sql.query('delete from conversations where id = $1 and user_id = $2', [id, userId]);
      broadcaster.toUser(userId, 'conversation:removed', { id });
      return { id };
    },

    async sweep() {
      const stale = await sql.query<{ id: string; node_id: string | null }>("select id, node_id from messages where status = 'streaming' and created_at < $1 limit 500", [
        new Date(Date.now() - HEARTBEAT_TTL_MS),
      ]);
      let ended = 0;
      for (const m of stale) {
        if (assistant.isRunningHere(m.id)) continue;
        // A message left by an earlier run of this very node cannot be alive.
        const alive = m.node_id === deps.nodeId ? false : await mayBeAlive(m.id, m.node_id);
        if (alive) continue;
        if (await markEnded(m.id, 'interrupted')) {
          ended++;
          logger.warn({ messageId: m.id, nodeId: m.node_id }, 'answer interrupted: its node stopped');
        }
      }
      return ended;
    },

    async exportFor(userId) {
      const [conversations, messages] = (await sql.snapshot([
        { text: `select ${conversationColumns} from conversations c where c.user_id = $1 order by c.created_at asc, c.id asc`, params: [userId] },
        { text: `select ${messageColumns} from messages where user_id = $1 order by created_at asc, id asc`, params: [userId] },
      ])) as [ConversationRow[], MessageRow[]];
      return { conversations: conversations.map(toConversation), messages: messages.map(toMessage) };
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
