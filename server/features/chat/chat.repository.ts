/**
 * Every SQL statement of the chat feature: conversations and messages, as
 * typed rows. Every stream starts and ends with these statements, so a send
 * is two round trips (its reads with the BEGIN, its inserts with the COMMIT)
 * and an answer's end one.
 */
import type { ErrorCode } from '../../../shared/errors.js';
import type { Conversation, Message } from '../../../shared/schemas/chat.js';
import { snapshot, transaction, type Sql } from '../../db/postgres.js';

export interface MessageRow {
  id: string;
  conversationId: string;
  userId: string;
  role: Message['role'];
  content: string;
  status: Message['status'];
  lastSeq: number | null;
  toolCalls: Message['toolCalls'] | null;
  usage: Message['usage'];
  model: string | null;
  error: { code: ErrorCode; message: string } | null;
  nodeId: string | null;
  createdAt: Date;
}

export interface ConversationRow {
  id: string;
  title: string;
  createdAt: Date;
  updatedAt: Date;
  /** whether one of its messages is streaming */
  generating: boolean;
}

/** A message, with the id of the answer to it (CHAT-1: a retried `id` returns the first result). */
export type SentMessageRow = MessageRow & { replyId: string | null };

export function toMessage(m: MessageRow): Message {
  return {
    id: m.id,
    conversationId: m.conversationId,
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

export function toConversation(c: ConversationRow): Conversation {
  return { id: c.id, title: c.title, createdAt: c.createdAt.toISOString(), updatedAt: c.updatedAt.toISOString(), generating: c.generating };
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

/** What a send reads under the user's row lock. */
export interface SendReads {
  user: { fullName: string; timezone: string } | undefined;
  /** conversations of the user with an answer streaming */
  streamingIn: string[];
  /** the message a retried `id` names */
  replay: SentMessageRow | undefined;
  conversation: Omit<ConversationRow, 'generating'> | undefined;
  history: { role: Message['role']; content: string }[];
}

/** What a send writes: a new conversation or a touched one, the user's message and the streaming answer. */
export interface SendWrites {
  conversation: { id: string; title: string; isNew: boolean };
  userMessage: { id: string; content: string };
  reply: { id: string; nodeId: string; model: string };
  now: Date;
}

/**
 * At most this many of a conversation's newest messages are read for a prompt: more than the history's token
 * budget (`trimHistory`) keeps in any conversation but one of very short messages.
 */
export const HISTORY_MESSAGE_LIMIT = 200;

export type ChatRepository = ReturnType<typeof createChatRepository>;

export function createChatRepository(sql: Sql) {
  const messageColumns = sql(['id', 'conversation_id', 'user_id', 'role', 'content', 'status', 'last_seq', 'tool_calls', 'usage', 'model', 'error', 'node_id', 'created_at']);
  /** A conversation's columns and its `generating` flag; `c` is the conversations table. */
  const conversationColumns = sql.unsafe(`c.id, c.title, c.created_at, c.updated_at,
    exists (select 1 from messages m where m.conversation_id = c.id and m.status = 'streaming') as generating`);
  const replayQuery = (q: Sql, id: string) => q<SentMessageRow[]>`
    select ${messageColumns}, (select r.id from messages r where r.conversation_id = messages.conversation_id and r.reply_to = messages.id limit 1) as reply_id
      from messages where id = ${id}`;

  return {
    /**
     * A send (CHAT-1): locks the user's row (so a user's sends are
     * serialised and the limits `decide` checks cannot be raced), reads what
     * `decide` needs with the BEGIN, and writes what it returns with the
     * COMMIT. `decide` returns undefined to write nothing.
     */
    send<R>(userId: string, input: { id?: string | undefined; conversationId?: string | undefined }, decide: (reads: SendReads) => { result: R; writes?: SendWrites }): Promise<R> {
      return transaction(sql, async (tx) => {
        const q = tx.sql;
        const none = Promise.resolve([]);
        const [users, streaming, replay, conversations, history] = await Promise.all([
          q<{ fullName: string; timezone: string }[]>`select full_name, timezone from users where id = ${userId} for update`,
          q<{ conversationId: string }[]>`select conversation_id from messages where user_id = ${userId} and status = 'streaming'`,
          input.id ? replayQuery(q, input.id) : none,
          input.conversationId ? q<Omit<ConversationRow, 'generating'>[]>`select id, title, created_at, updated_at from conversations where id = ${input.conversationId} and user_id = ${userId}` : none,
          // The newest messages only, as many as the prompt's history could hold (CHAT-8), not the whole conversation.
          input.conversationId
            ? q<{ role: Message['role']; content: string }[]>`
                select role, content from (
                  select role, content, created_at, id from messages where conversation_id = ${input.conversationId}
                   order by created_at desc, id desc limit ${HISTORY_MESSAGE_LIMIT}) recent
                 order by created_at asc, id asc`
            : none,
        ]);
        const { result, writes } = decide({
          user: users[0],
          streamingIn: streaming.map((m) => m.conversationId),
          replay: replay[0] as SentMessageRow | undefined,
          conversation: conversations[0] as Omit<ConversationRow, 'generating'> | undefined,
          history: history as { role: Message['role']; content: string }[],
        });
        if (!writes) return result;
        const { conversation, userMessage, reply, now } = writes;
        tx.atCommit(
          conversation.isNew
            ? q`insert into conversations (id, user_id, title, created_at, updated_at) values (${conversation.id}, ${userId}, ${conversation.title}, ${now}, ${now})`
            : q`update conversations set updated_at = ${now} where id = ${conversation.id}`,
          q`insert into messages (id, conversation_id, user_id, role, content, status, tool_calls, reply_to, node_id, model, created_at, updated_at)
            values (${userMessage.id}, ${conversation.id}, ${userId}, 'user', ${userMessage.content}, 'complete', '[]', null, null, null, ${now}, ${now})`,
          // a millisecond later, so that history order is stable
          q`insert into messages (id, conversation_id, user_id, role, content, status, tool_calls, reply_to, node_id, model, created_at, updated_at)
            values (${reply.id}, ${conversation.id}, ${userId}, 'assistant', '', 'streaming', '[]', ${userMessage.id}, ${reply.nodeId}, ${reply.model}, ${new Date(now.getTime() + 1)}, ${now})`,
        );
        return result;
      });
    },

    /** The message a retried `chat:send` id names, whoever sent it. */
    async replay(id: string): Promise<SentMessageRow | undefined> {
      const [row] = await replayQuery(sql, id);
      return row;
    },

    /** A message, of the user when `userId` is given. */
    async message(id: string, userId?: string): Promise<MessageRow | undefined> {
      const [row] =
        userId === undefined
          ? await sql<MessageRow[]>`select ${messageColumns} from messages where id = ${id}`
          : await sql<MessageRow[]>`select ${messageColumns} from messages where id = ${id} and user_id = ${userId}`;
      return row;
    },

    async conversationExists(userId: string, id: string): Promise<boolean> {
      const rows = await sql`select 1 from conversations where id = ${id} and user_id = ${userId}`;
      return rows.length > 0;
    },

    /**
     * A page of a conversation, newest first, `limit` + 1 rows (so the caller
     * knows whether more exist); before the message `before` when given
     * (undefined when that message is not in the conversation).
     */
    async page(conversationId: string, limit: number, before?: string): Promise<MessageRow[] | undefined> {
      if (before === undefined) {
        return sql<MessageRow[]>`select ${messageColumns} from messages where conversation_id = ${conversationId} order by created_at desc, id desc limit ${limit + 1}`;
      }
      const [anchor] = await sql<{ createdAt: Date }[]>`select created_at from messages where id = ${before} and conversation_id = ${conversationId}`;
      if (!anchor) return undefined;
      return sql<MessageRow[]>`
        select ${messageColumns} from messages where conversation_id = ${conversationId} and created_at < ${anchor.createdAt}
         order by created_at desc, id desc limit ${limit + 1}`;
    },

    conversations(userId: string, limit: number, before?: Date) {
      return before === undefined
        ? sql<ConversationRow[]>`select ${conversationColumns} from conversations c where c.user_id = ${userId} order by c.updated_at desc, c.id desc limit ${limit}`
        : sql<ConversationRow[]>`
            select ${conversationColumns} from conversations c where c.user_id = ${userId} and c.updated_at < ${before}
             order by c.updated_at desc, c.id desc limit ${limit}`;
    },

    async rename(userId: string, id: string, title: string, now: Date): Promise<ConversationRow | undefined> {
      const [row] = await sql<ConversationRow[]>`
        update conversations c set title = ${title}, updated_at = ${now} where c.id = ${id} and c.user_id = ${userId} returning ${conversationColumns}`;
      return row;
    },

    /** The user's answers being generated, in any conversation. */
    async streamingOf(userId: string): Promise<string[]> {
      const rows = await sql<{ id: string }[]>`select id from messages where user_id = ${userId} and status = 'streaming'`;
      return rows.map((r) => r.id);
    },

    async streamingIn(conversationId: string): Promise<string[]> {
      const rows = await sql<{ id: string }[]>`select id from messages where conversation_id = ${conversationId} and status = 'streaming'`;
      return rows.map((r) => r.id);
    },

    async deleteConversation(userId: string, id: string): Promise<void> {
      await sql`delete from conversations where id = ${id} and user_id = ${userId}`;
    },

    /**
     * Ends a streaming message unless something ended it first (the
     * generating node, the sweeper, a cancel: the first wins), in one
     * statement with its conversation: bumped when `touch` (a finished
     * answer), read otherwise, with its `generating` flag as it is after this
     * end. Returns both, or undefined when the message was already ended.
     */
    async endStreaming(messageId: string, end: MessageEnd, now: Date, touch: boolean): Promise<{ message: MessageRow; conversation: ConversationRow | undefined } | undefined> {
      const json = (value: unknown) => (value === undefined ? null : sql.json(value as never));
      const [row] = await sql<(MessageRow & { conversation: (Omit<ConversationRow, 'createdAt' | 'updatedAt'> & { createdAt: string; updatedAt: string }) | null })[]>`
        with ended as (
          update messages set
            status = ${end.status},
            updated_at = ${now},
            content = coalesce(${end.content ?? null}, content),
            last_seq = case when ${end.lastSeq !== undefined} then ${end.lastSeq ?? null}::int else last_seq end,
            tool_calls = coalesce(${json(end.toolCalls)}::jsonb, tool_calls),
            usage = case when ${end.usage !== undefined} then ${json(end.usage)}::jsonb else usage end,
            model = coalesce(${end.model ?? null}, model),
            error = case when ${end.error !== undefined} then ${json(end.error)}::jsonb else error end
          where id = ${messageId} and status = 'streaming'
          returning ${messageColumns}
        ), touched as (
          update conversations c set updated_at = ${now} from ended
           where ${touch} and c.id = ended.conversation_id and c.user_id = ended.user_id
          returning c.id, c.title, c.created_at, c.updated_at
        )
        select ended.*, (
          select json_build_object('id', c.id, 'title', c.title, 'createdAt', c.created_at, 'updatedAt', coalesce(t.updated_at, c.updated_at),
            -- the statement's snapshot still sees the ended message streaming
            'generating', exists (select 1 from messages m where m.conversation_id = c.id and m.status = 'streaming' and m.id <> ended.id))
            from conversations c left join touched t on t.id = c.id
           where c.id = ended.conversation_id and c.user_id = ended.user_id
        ) as conversation
        from ended`;
      if (!row) return undefined;
      const { conversation, ...message } = row;
      return {
        message,
        conversation: conversation ? { ...conversation, createdAt: new Date(conversation.createdAt), updatedAt: new Date(conversation.updatedAt) } : undefined,
      };
    },

    /** Streaming messages older than `before` (candidates for the sweeper, CHAT-7). */
    staleStreaming(before: Date) {
      return sql<{ id: string; nodeId: string | null }[]>`select id, node_id from messages where status = 'streaming' and created_at < ${before} limit 500`;
    },

    /** Every conversation and message of the user, oldest first, on one snapshot (`user:export`). */
    async exportFor(userId: string) {
      const [conversations, messages] = await snapshot(
        sql,
        (q) =>
          [
            q<ConversationRow[]>`select ${conversationColumns} from conversations c where c.user_id = ${userId} order by c.created_at asc, c.id asc`,
            q<MessageRow[]>`select ${messageColumns} from messages where user_id = ${userId} order by created_at asc, id asc`,
          ] as const,
      );
      return { conversations: conversations as unknown as ConversationRow[], messages: messages as unknown as MessageRow[] };
    },
  };
}
