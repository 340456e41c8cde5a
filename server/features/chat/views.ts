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
import type { Broadcaster } from '../../realtime/rooms.js';

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

export interface ChatViews {
  /** Bumps `updatedAt` (lists are ordered by it) and broadcasts `conversation:changed`. */
  touchAndAnnounce(userId: string, conversationId: string): Promise<void>;
  /** Broadcasts `conversation:changed` with the current `generating` flag. */
  announceConversation(userId: string, conversationId: string): Promise<void>;
}

export function createChatViews(deps: { sql: Sql; broadcaster: Broadcaster }): ChatViews {
  const { sql, broadcaster } = deps;
  const announce = (userId: string, row: ConversationRow | undefined) => {
    if (row) broadcaster.toUser(userId, 'conversation:changed', { conversation: toConversation(row) });
  };
  return {
    async touchAndAnnounce(userId, conversationId) {
      const [row] = await sql.query<ConversationRow>(`update conversations c set updated_at = $3 where c.id = $1 and c.user_id = $2 returning ${conversationColumns}`, [
        conversationId,
        userId,
        new Date(),
      ]);
      announce(userId, row);
    },
    async announceConversation(userId, conversationId) {
      const [row] = await sql.query<ConversationRow>(`select ${conversationColumns} from conversations c where c.id = $1 and c.user_id = $2`, [conversationId, userId]);
      announce(userId, row);
    },
  };
}
