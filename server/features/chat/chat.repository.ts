/**
 * Every SQL statement of the chat feature: conversations and messages, as
 * typed rows. Every stream starts and ends with these statements, so a send
 * is two round trips (its reads with the BEGIN, its inserts with the COMMIT)
 * and an answer's end one.
 */
import type { ErrorCode } from '../../../shared/errors.js';
import type { Conversation, Message, StopReason } from '../../../shared/schemas/chat.js';
import { snapshot, transaction, type ISql, type Sql } from '../../db/postgres.js';

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
  stopReason: StopReason | null;
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
    // answers stored before 1.1 have no cache counts
    usage: m.usage ? { ...m.usage, cacheReadTokens: m.usage.cacheReadTokens ?? 0, cacheCreationTokens: m.usage.cacheCreationTokens ?? 0 } : null,
    model: m.model ?? null,
    stopReason: m.stopReason ?? null,
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
  stopReason?: StopReason | null;
  error?: MessageRow['error'];
}

/** A message of a conversation's history, as the prompt reads it. */
export interface HistoryRow {
  id: string;
  role: Message['role'];
  content: string;
  stopReason: StopReason | null;
}

/** What a send reads under the user's row lock; `alongside`, what its caller read with it (`send`). */
export interface SendReads<A = unknown> {
  alongside: A;
  user: { fullName: string; timezone: string } | undefined;
  /** conversations of the user with an answer streaming */
  streamingIn: string[];
  /** the message a retried `id` names */
  replay: SentMessageRow | undefined;
  conversation: Omit<ConversationRow, 'generating'> | undefined;
  history: HistoryRow[];
}

/** What an edit, a regenerate or a continue (CHAT-10, CHAT-13) reads under the user's row lock; `alongside` as for a send. */
export interface RerunReads<A = unknown> {
  alongside: A;
  user: { fullName: string; timezone: string } | undefined;
  /** conversations of the user with an answer streaming */
  streamingIn: string[];
  /** the message named, if it is the user's, with whether it is its conversation's last one */
  target: (MessageRow & { isLast: boolean }) | undefined;
  conversation: Omit<ConversationRow, 'generating'> | undefined;
  /** the conversation's newest messages up to the target, the target included, oldest first */
  history: HistoryRow[];
  /** the ids of the messages after the target */
  after: string[];
}

/** What a rerun writes (every statement leaves with the COMMIT). */
export type RerunWrites = { now: Date } & (
  | { kind: 'edit'; content: string; reply: { id: string; nodeId: string; model: string; createdAt: Date } }
  | { kind: 'regenerate'; reply: { id: string; replyTo: string | null; nodeId: string; model: string; createdAt: Date } }
  | { kind: 'continue'; nodeId: string }
);

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
  const messageColumns = sql(['id', 'conversation_id', 'user_id', 'role', 'content', 'status', 'last_seq', 'tool_calls', 'usage', 'model', 'stop_reason', 'error', 'node_id', 'created_at']);
  /** A conversation's columns and its `generating` flag; `c` is the conversations table. */
  const conversationColumns = sql.unsafe(`c.id, c.title, c.created_at, c.updated_at,
    exists (select 1 from messages m where m.conversation_id = c.id and m.status = 'streaming') as generating`);
  const replayQuery = (q: ISql, id: string) => q<SentMessageRow[]>`
    select ${messageColumns}, (select r.id from messages r where r.conversation_id = messages.conversation_id and r.reply_to = messages.id limit 1) as reply_id
      from messages where id = ${id}`;

  return {
    /**
     * A send (CHAT-1): locks the user's row (so a user's sends are
     * serialised and the limits `decide` checks cannot be raced), reads what
     * `decide` needs with the BEGIN, and writes what it returns with the
     * COMMIT. `decide` returns no writes to write nothing. `alongside` reads
     * what else the answer needs (the prompt's tasks) in the same round trip,
     * on the transaction's connection; `decide` gets it with the other reads.
     */
    send<R, A>(
      userId: string,
      input: { id?: string | undefined; conversationId?: string | undefined },
      alongside: (q: ISql) => Promise<A>,
      decide: (reads: SendReads<A>) => { result: R; writes?: SendWrites },
    ): Promise<R> {
      return transaction(sql, async (tx) => {
        const q = tx.sql;
        const none = Promise.resolve([]);
        const [users, streaming, replay, conversations, history, alongsideRead] = await Promise.all([
          q<{ fullName: string; timezone: string }[]>`select full_name, timezone from users where id = ${userId} for update`,
          q<{ conversationId: string }[]>`select conversation_id from messages where user_id = ${userId} and status = 'streaming'`,
          input.id ? replayQuery(q, input.id) : none,
          input.conversationId ? q<Omit<ConversationRow, 'generating'>[]>`select id, title, created_at, updated_at from conversations where id = ${input.conversationId} and user_id = ${userId}` : none,
          // The newest messages only, as many as the prompt's history could hold (CHAT-8), not the whole conversation.
          input.conversationId
            ? q<HistoryRow[]>`
                select id, role, content, stop_reason from (
                  select id, role, content, stop_reason, created_at from messages where conversation_id = ${input.conversationId}
                   order by created_at desc, id desc limit ${HISTORY_MESSAGE_LIMIT}) recent
                 order by created_at asc, id asc`
            : none,
          alongside(q),
        ]);
        const { result, writes } = decide({
          alongside: alongsideRead,
          user: users[0],
          streamingIn: streaming.map((m) => m.conversationId),
          replay: replay[0] as SentMessageRow | undefined,
          conversation: conversations[0] as Omit<ConversationRow, 'generating'> | undefined,
          history: history as HistoryRow[],
        });
        if (!writes) return result;
        const { conversation, userMessage, reply, now } = writes;
        // One statement: every stream starts with it, and each statement costs the client and PostgreSQL more
        // than the rows it carries. The conversation's row comes first (a CTE), so the messages' key finds it.
        const conversationWrite = conversation.isNew
          ? q`insert into conversations (id, user_id, title, created_at, updated_at) values (${conversation.id}, ${userId}, ${conversation.title}, ${now}, ${now})`
          : q`update conversations set updated_at = ${now} where id = ${conversation.id}`;
        tx.atCommit(q`
          with conversation as (${conversationWrite})
          insert into messages (id, conversation_id, user_id, role, content, status, tool_calls, reply_to, node_id, model, created_at, updated_at)
          values (${userMessage.id}, ${conversation.id}, ${userId}, 'user', ${userMessage.content}, 'complete', '[]', null, null, null, ${now}, ${now}),
                 -- the answer a millisecond later, so that history order is stable
                 (${reply.id}, ${conversation.id}, ${userId}, 'assistant', '', 'streaming', '[]', ${userMessage.id}, ${reply.nodeId}, ${reply.model}, ${new Date(now.getTime() + 1)}, ${now})`);
        return result;
      });
    },

    /**
     * An edit, a regenerate or a continue (CHAT-10, CHAT-13), as a send is
     * made: under the user's row lock (so that two tabs' reruns, and sends,
     * are serialised and the first one wins), the reads with the BEGIN and
     * the writes with the COMMIT. `decide` throws to refuse, and may await
     * (it runs before the COMMIT). `alongside` as for a send.
     */
    rerun<R, A>(
      userId: string,
      messageId: string,
      alongside: (q: ISql) => Promise<A>,
      decide: (reads: RerunReads<A>) => Promise<{ result: R; writes: RerunWrites }>,
    ): Promise<R> {
      return transaction(sql, async (tx) => {
        const q = tx.sql;
        const [users, streaming, targets, conversations, history, after, alongsideRead] = await Promise.all([
          q<{ fullName: string; timezone: string }[]>`select full_name, timezone from users where id = ${userId} for update`,
          q<{ conversationId: string }[]>`select conversation_id from messages where user_id = ${userId} and status = 'streaming'`,
          q<(MessageRow & { isLast: boolean })[]>`
            select ${messageColumns}, not exists (
              select 1 from messages later where later.conversation_id = messages.conversation_id
                 and (later.created_at, later.id) > (messages.created_at, messages.id)) as is_last
              from messages where id = ${messageId} and user_id = ${userId}`,
          q<Omit<ConversationRow, 'generating'>[]>`
            select c.id, c.title, c.created_at, c.updated_at from conversations c join messages t on t.conversation_id = c.id
             where t.id = ${messageId} and t.user_id = ${userId}`,
          q<HistoryRow[]>`
            select id, role, content, stop_reason from (
              select m.id, m.role, m.content, m.stop_reason, m.created_at from messages m join messages t on t.conversation_id = m.conversation_id
               where t.id = ${messageId} and t.user_id = ${userId} and (m.created_at, m.id) <= (t.created_at, t.id)
               order by m.created_at desc, m.id desc limit ${HISTORY_MESSAGE_LIMIT}) recent
             order by created_at asc, id asc`,
          q<{ id: string }[]>`
            select m.id from messages m join messages t on t.conversation_id = m.conversation_id
             where t.id = ${messageId} and t.user_id = ${userId} and (m.created_at, m.id) > (t.created_at, t.id)`,
          alongside(q),
        ]);
        const target = targets[0];
        const { result, writes } = await decide({
          alongside: alongsideRead,
          user: users[0],
          streamingIn: streaming.map((m) => m.conversationId),
          target,
          conversation: conversations[0],
          history: history as HistoryRow[],
          after: after.map((m) => m.id),
        });
        if (!target) return result;
        const { now } = writes;
        const touch = q`update conversations set updated_at = ${now} where id = ${target.conversationId}`;
        const insertReply = (reply: { id: string; replyTo: string | null; nodeId: string; model: string; createdAt: Date }) =>
          q`insert into messages (id, conversation_id, user_id, role, content, status, tool_calls, reply_to, node_id, model, created_at, updated_at)
            values (${reply.id}, ${target.conversationId}, ${userId}, 'assistant', '', 'streaming', '[]', ${reply.replyTo}, ${reply.nodeId}, ${reply.model}, ${reply.createdAt}, ${now})`;
        const deleteAfter = (id: string) =>
          q`delete from messages m using messages t
             where t.id = ${id} and m.conversation_id = t.conversation_id and (m.created_at, m.id) > (t.created_at, t.id)`;
        switch (writes.kind) {
          case 'edit':
            tx.atCommit(
              q`update messages set content = ${writes.content}, updated_at = ${now} where id = ${target.id}`,
              deleteAfter(target.id),
              insertReply({ ...writes.reply, replyTo: target.id }),
              touch,
            );
            break;
          case 'regenerate':
            tx.atCommit(q`delete from messages where id = ${target.id}`, insertReply(writes.reply), touch);
            break;
          case 'continue':
            tx.atCommit(
              q`update messages set status = 'streaming', stop_reason = null, node_id = ${writes.nodeId}, updated_at = ${now} where id = ${target.id}`,
              touch,
            );
            break;
        }
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
            stop_reason = case when ${end.stopReason !== undefined} then ${end.stopReason ?? null}::text else stop_reason end,
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

    /**
     * Messages streaming since before `before` (candidates for the sweeper, CHAT-7): since their last update,
     * which is when they started streaming, also for an answer that went back to streaming (`chat:continue`).
     */
    staleStreaming(before: Date) {
      return sql<{ id: string; nodeId: string | null }[]>`select id, node_id from messages where status = 'streaming' and updated_at < ${before} limit 500`;
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
