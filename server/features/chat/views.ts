/**
 * Conversations and messages as rows of plain SQL (`server/db/sql.ts`), their
 * wire shapes, and the announcements that keep tabs in step. Every stream
 * starts and ends with these statements, so they go through the same plain SQL
 * path as task changes rather than the ORM (the entities in `chat.entity.ts`
 * still define the tables and migrations).
 */
import type { Conversation, Message } from '../../../shared/schemas/chat.js';
import type { ErrorCode } from '../../../shared/errors.js';
import type { Sql } from '../../db/sql.js';
import type { Redis } from '../../redis.js';
import type { Broadcaster } from '../../realtime/rooms.js';
import { bufferKeys, heartbeatKey } from './stream-buffer.js';

export interface MessageRow {
  id: string;
  conversation_id: string;
  user_id: string;
  role: Message['role'];
  content: string;
  status: Message['status'];
  last_seq: number | null;
  tool_calls: Message['toolCalls'] | null;
  usage: Message['usage'];
  model: string | null;
  error: { code: ErrorCode; message: string } | null;
  node_id: string | null;
  created_at: Date | string;
}

export interface ConversationRow {
  id: string;
  title: string;
  created_at: Date | string;
  updated_at: Date | string;
  /** whether one of its messages is streaming */
  generating: boolean;
}

/** Every column a message view needs (prepared statements name their columns). */
export const messageColumns = 'id, conversation_id, user_id, role, content, status, last_seq, tool_calls, usage, model, error, node_id, created_at';

/** A conversation's columns and its `generating` flag; `c` is the conversations table. */
export const conversationColumns = `c.id, c.title, c.created_at, c.updated_at,
  exists (select 1 from messages m where m.conversation_id = c.id and m.status = 'streaming') as generating`;

const iso = (v: Date | string) => (v instanceof Date ? v : new Date(v)).toISOString();

export function toMessage(m: MessageRow): Message {
  return {
    id: m.id,
    conversationId: m.conversation_id,
    role: m.role,
    content: m.content,
    status: m.status,
    lastSeq: m.last_seq ?? null,
    toolCalls: m.tool_calls ?? [],
    usage: m.usage ?? null,
    model: m.model ?? null,
    error: m.error ?? null,
    createdAt: iso(m.created_at),
  };
}

export function toConversation(c: ConversationRow): Conversation {
  return { id: c.id, title: c.title, createdAt: iso(c.created_at), updatedAt: iso(c.updated_at), generating: c.generating };
}

/** How a streaming message ends: its status, and the columns its ender knows (the others keep their values). */
export interface MessageEnd {
  status: Exclude<Message['status'], 'streaming'>;
  content?: string;
  lastSeq?: number | null;
  toolCalls?: Message['toolCalls'];
  usage?: Message['usage'];
  model?: string;
  error?: MessageRow['error'];
}

const endColumns = { content: 'content', lastSeq: 'last_seq', toolCalls: 'tool_calls', usage: 'usage', model: 'model', error: 'error' } as const;
const jsonColumns = new Set<keyof typeof endColumns>(['toolCalls', 'usage', 'error']);

export interface ChatViews {
  /**
   * Ends a streaming message, unless something ended it first (the generating
   * node, the sweeper, a cancel: the first wins); then its Redis buffer and
   * heartbeat go, and the user's tabs get `chat:done` and the conversation with
   * its `generating` flag (bumped when `touchConversation`, as a finished answer
   * does). Returns the ended message, or undefined when it was already ended.
   */
  endStreaming(messageId: string, end: MessageEnd, options?: { touchConversation?: boolean }): Promise<MessageRow | undefined>;
}

export function createChatViews(deps: { sql: Sql; redis: Redis; broadcaster: Broadcaster }): ChatViews {
  const { sql, redis, broadcaster } = deps;
  return {
    async endStreaming(messageId, end, options = {}) {
      const params: unknown[] = [messageId, end.status, new Date()];
      const sets = ['status = $2', 'updated_at = $3'];
      for (const key of Object.keys(endColumns) as (keyof typeof endColumns)[]) {
        const value = end[key];
        if (value === undefined) continue;
        params.push(jsonColumns.has(key) && value !== null ? JSON.stringify(value) : value);
        sets.push(`${endColumns[key]} = $${params.length}`);
      }
      const [ended] = await sql.query<MessageRow>(`update messages set ${sets.join(', ')} where id = $1 and status = 'streaming' returning ${messageColumns}`, params);
      await redis.del(...bufferKeys(messageId), heartbeatKey(messageId)).catch(() => undefined);
      if (!ended) return undefined;
      const userId = ended.user_id;
      broadcaster.toUser(userId, 'chat:done', { conversationId: ended.conversation_id, message: toMessage(ended) });
      const [conversation] = options.touchConversation
        ? await sql.query<ConversationRow>(`update conversations c set updated_at = $3 where c.id = $1 and c.user_id = $2 returning ${conversationColumns}`, [
            ended.conversation_id,
            userId,
            new Date(),
          ])
        : await sql.query<ConversationRow>(`select ${conversationColumns} from conversations c where c.id = $1 and c.user_id = $2`, [ended.conversation_id, userId]);
      if (conversation) broadcaster.toUser(userId, 'conversation:changed', { conversation: toConversation(conversation) });
      return ended;
    },
  };
}
