/**
 * Conversations and messages (PROTOCOL §6.2): send (CHAT-1), cancel (CHAT-5),
 * history with the text so far of a streaming answer (CHAT-3), lists, rename,
 * delete, the sweeper that marks answers of dead nodes `interrupted` (CHAT-7),
 * and edit, regenerate and continue (§6.2b, CHAT-10, CHAT-13).
 */
import { randomUUID } from 'node:crypto';
import { appError, ErrorCode } from '../../errors.js';
import type { ChatSend, Conversation, Message } from '../../../shared/schemas/chat.js';
import type { Task } from '../../../shared/schemas/tasks.js';
import { isUniqueViolation } from '../../db/postgres.js';
import type { Logger } from '../../logger.js';
import type { Redis } from '../../redis.js';
import type { Broadcaster } from '../../realtime/rooms.js';
import { Assistant, HEARTBEAT_TTL_MS, type GenerationJob } from './assistant.js';
import type { TasksService } from '../tasks/tasks.service.js';
import { heartbeatKey, readBuffer } from './stream-buffer.js';
import { toConversation, toMessage, type ChatRepository, type MessageRow, type RerunReads, type RerunWrites, type SentMessageRow } from './chat.repository.js';
import type { ChatViews } from './views.js';
import type { ExportContributor } from '../account/account.service.js';
import { nodeLastSeen } from '../../realtime/nodes.js';

/** At most this many answers generate at once for one user (cost control). */
export const MAX_GENERATIONS_PER_USER = 2;
const TITLE_LENGTH = 60;
/** how long a message removed by an edit or a regenerate is remembered, so that a late rerun of it is CONFLICT, not NOT_FOUND */
export const REPLACED_TTL_SECONDS = 3_600;
const replacedKey = (messageId: string) => `chat:replaced:${messageId}`;

type Rerun = { kind: 'edit'; content: string } | { kind: 'regenerate' } | { kind: 'continue' };
type RerunAck = { conversationId: string; userMessage?: Message; assistantMessageId: string };

export interface ChatService extends ExportContributor {
  send(userId: string, input: ChatSend): Promise<{ conversationId: string; userMessage: Message; assistantMessageId: string }>;
  cancel(userId: string, messageId: string): Promise<{ message: Message }>;
  /** CHAT-10: new text for one of the user's messages; everything after it goes and a new answer streams. */
  edit(userId: string, messageId: string, content: string): Promise<{ conversationId: string; userMessage: Message; assistantMessageId: string }>;
  /** CHAT-10: the conversation's last answer is replaced by a new one. */
  regenerate(userId: string, messageId: string): Promise<{ conversationId: string; assistantMessageId: string }>;
  /** CHAT-13: the last answer, stopped at max_tokens, goes on (same message, its deltas' seq going on). */
  continue(userId: string, messageId: string): Promise<{ conversationId: string; assistantMessageId: string }>;
  history(userId: string, q: { conversationId: string; before?: string | undefined; limit?: number | undefined }): Promise<{ messages: Message[]; hasMore: boolean }>;
  listConversations(userId: string, q: { before?: string | undefined; limit?: number | undefined }): Promise<{ conversations: Conversation[] }>;
  rename(userId: string, id: string, title: string): Promise<{ conversation: Conversation }>;
  remove(userId: string, id: string): Promise<{ id: string }>;
  /** Marks streaming answers whose node stopped beating as interrupted; returns how many. */
  sweep(): Promise<number>;
  /** Stops every answer of the user being generated, on any node (account deletion). */
  stopAllOf(userId: string): Promise<void>;
}

export function titleFrom(content: string): string {
  const flat = content.replace(/\s+/g, ' ').trim();
  if (flat.length <= TITLE_LENGTH) return flat;
  const cut = flat.slice(0, TITLE_LENGTH);
  const space = cut.lastIndexOf(' ');
  return `${(space > 20 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

export function createChatService(deps: {
  chat: ChatRepository;
  tasks: TasksService;
  redis: Redis;
  broadcaster: Broadcaster;
  assistant: Assistant;
  views: ChatViews;
  logger: Logger;
  nodeId: string;
  model: string;
}): ChatService {
  const { chat, tasks, redis, broadcaster, assistant, views, logger } = deps;

  /** A streaming message with the text so far from Redis (CHAT-3). */
  async function withBuffer(m: MessageRow): Promise<Message> {
    const view = toMessage(m);
    if (m.status !== 'streaming') return view;
    const buffer = await readBuffer(redis, m.id);
    return buffer ? { ...view, content: buffer.content, lastSeq: buffer.lastSeq, toolCalls: buffer.toolCalls } : view;
  }

  /** CHAT-1: a retried `id` returns the first result; other content under the same id is CONFLICT. */
  function replayOf(userId: string, input: ChatSend, existing: SentMessageRow | undefined) {
    if (!existing) return undefined;
    if (existing.userId !== userId || existing.role !== 'user' || existing.content !== input.content) {
      throw appError(ErrorCode.CONFLICT, { message: 'This message id was already used for another message' });
    }
    return { conversationId: existing.conversationId, userMessage: toMessage(existing), assistantMessageId: existing.replyId ?? '' };
  }

  async function ownedConversation(userId: string, id: string): Promise<void> {
    if (!(await chat.conversationExists(userId, id))) throw appError(ErrorCode.NOT_FOUND, { message: 'Conversation not found' });
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

  /** Stops a generation here, or asks the other nodes to stop it where it runs. */
  async function stopAnywhere(messageId: string): Promise<void> {
    if (!(await assistant.stop(messageId, 'cancelled'))) broadcaster.toOtherNodes('chat:cancel', messageId);
  }

  /**
   * Remembers the messages an edit or a regenerate removes, before its COMMIT:
   * a rerun of one of them from a tab that had not heard yet (or that raced
   * and lost) is CONFLICT rather than NOT_FOUND. Best effort: without Redis it
   * is NOT_FOUND.
   */
  async function rememberReplaced(userId: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const multi = redis.multi();
    for (const id of ids) multi.set(replacedKey(id), userId, 'EX', REPLACED_TTL_SECONDS);
    await multi.exec().catch(() => undefined);
  }

  async function refuseMissing(userId: string, messageId: string): Promise<never> {
    const replacedFor = await redis.get(replacedKey(messageId)).catch(() => null);
    if (replacedFor === userId) throw appError(ErrorCode.CONFLICT, { message: 'This message was replaced in another tab' });
    throw appError(ErrorCode.NOT_FOUND, { message: 'Message not found' });
  }

  /** The checks every rerun makes under the user's row lock; returns the message named. */
  async function checkRerun(userId: string, messageId: string, op: Rerun, read: RerunReads) {
    const { target, conversation, user } = read;
    if (!target || !conversation || !user) return refuseMissing(userId, messageId);
    const role = op.kind === 'edit' ? 'user' : 'assistant';
    if (target.role !== role) {
      const message = op.kind === 'edit' ? 'Only your own messages can be edited' : `Only an answer can be ${op.kind === 'regenerate' ? 'regenerated' : 'continued'}`;
      throw appError(ErrorCode.VALIDATION, { message, issues: [{ path: 'messageId', message }] });
    }
    if (read.streamingIn.includes(target.conversationId)) {
      throw appError(ErrorCode.CONFLICT, { message: 'An answer is already being generated in this conversation' });
    }
    if (op.kind !== 'edit' && !target.isLast) {
      throw appError(ErrorCode.CONFLICT, { message: `Only the last answer of a conversation can be ${op.kind === 'regenerate' ? 'regenerated' : 'continued'}` });
    }
    if (op.kind === 'continue' && (target.status !== 'complete' || target.stopReason !== 'max_tokens')) {
      throw appError(ErrorCode.CONFLICT, { message: 'Only an answer that stopped at its length limit can be continued' });
    }
    if (read.streamingIn.length >= MAX_GENERATIONS_PER_USER) {
      throw appError(ErrorCode.CONFLICT, { message: `At most ${MAX_GENERATIONS_PER_USER} answers can be generated at once` });
    }
    return { target, conversation, user };
  }

  /**
   * An edit, a regenerate or a continue (CHAT-10, CHAT-13): checked and
   * written in one transaction under the user's row lock, then announced
   * (`chat:truncated` first, then the new answer as a send announces one) and generated here.
   */
  async function rerun(userId: string, messageId: string, op: Rerun): Promise<RerunAck> {
    const started = await chat.rerun(userId, messageId, (q) => tasks.openTasks(userId, q), async (read) => {
      const { target, conversation: row, user } = await checkRerun(userId, messageId, op, read);
      const now = new Date();
      const conversation: Conversation = { ...toConversation({ ...row, generating: true }), updatedAt: now.toISOString() };
      const prompt = { user: { fullName: user.fullName, timezone: user.timezone }, history: read.history, openTasks: read.alongside };
      const answerOf = (id: string, createdAt: Date): Message => ({
        ...toMessage({ ...target, id, role: 'assistant', content: '', status: 'streaming', lastSeq: null, toolCalls: [], usage: null, model: deps.model, stopReason: null, error: null, createdAt }),
      });
      // a new answer sorts after what it answers whatever this node's clock says
      const after = (t: Date) => new Date(Math.max(now.getTime(), t.getTime() + 1));
      let writes: RerunWrites;
      let outcome: { afterMessageId?: string; userMessage?: Message; answer: Message; job: Omit<GenerationJob, 'userId'> };
      if (op.kind === 'edit') {
        const reply = { id: randomUUID(), nodeId: deps.nodeId, model: deps.model, createdAt: after(target.createdAt) };
        const history = read.history.map((m) => (m.id === target.id ? { ...m, content: op.content } : m));
        writes = { kind: 'edit', now, content: op.content, reply };
        outcome = {
          afterMessageId: target.id,
          userMessage: { ...toMessage(target), content: op.content },
          answer: answerOf(reply.id, reply.createdAt),
          job: { conversationId: target.conversationId, assistantMessageId: reply.id, prompt: { ...prompt, history } },
        };
        await rememberReplaced(userId, read.after);
      } else if (op.kind === 'regenerate') {
        const history = read.history.filter((m) => m.id !== target.id);
        const question = history.at(-1);
        const reply = { id: randomUUID(), replyTo: question?.id ?? null, nodeId: deps.nodeId, model: deps.model, createdAt: after(target.createdAt) };
        writes = { kind: 'regenerate', now, reply };
        outcome = {
          afterMessageId: question?.id ?? target.id,
          answer: answerOf(reply.id, reply.createdAt),
          job: { conversationId: target.conversationId, assistantMessageId: reply.id, prompt: { ...prompt, history } },
        };
        await rememberReplaced(userId, [target.id]);
      } else {
        writes = { kind: 'continue', now, nodeId: deps.nodeId };
        outcome = {
          answer: { ...toMessage(target), status: 'streaming', stopReason: null },
          job: {
            conversationId: target.conversationId,
            assistantMessageId: target.id,
            prompt,
            continuing: { content: target.content, lastSeq: target.lastSeq, toolCalls: target.toolCalls ?? [], usage: target.usage },
          },
        };
      }
      return { result: { ...outcome, conversation }, writes };
    });
    const { afterMessageId, userMessage, answer, job, conversation } = started;
    if (afterMessageId) broadcaster.toUser(userId, 'chat:truncated', { conversationId: conversation.id, afterMessageId });
    broadcaster.toUser(userId, 'conversation:changed', { conversation });
    if (userMessage) broadcaster.toUser(userId, 'chat:message', { message: userMessage });
    broadcaster.toUser(userId, 'chat:message', { message: answer });
    void assistant.start({ ...job, userId });
    return userMessage ? { conversationId: conversation.id, userMessage, assistantMessageId: answer.id } : { conversationId: conversation.id, assistantMessageId: answer.id };
  }

  // A cancel that reached another node is carried out where the generation runs.
  broadcaster.onNodeEvent('chat:cancel', (messageId) => {
    void assistant.stop(messageId, 'cancelled');
  });

  return {
    async send(userId, input) {
      type Reply = Awaited<ReturnType<ChatService['send']>>;
      type Started = { reply: Reply; conversation: Conversation; userMessage: Message; answer: Message; prompt: GenerationJob['prompt'] };
      let outcome: { replay: Reply } | { started: Started };
      try {
        // The user's row lock serialises a user's sends, so the limits below cannot be raced. The prompt's open
        // tasks are read in the transaction's first round trip (`alongside`).
        outcome = await chat.send<typeof outcome, Task[]>(userId, input, (q) => tasks.openTasks(userId, q), (read) => {
          const replay = replayOf(userId, input, read.replay);
          if (replay) return { result: { replay } };
          if (!read.user) throw appError(ErrorCode.NOT_FOUND, { message: 'User not found' });
          const now = new Date();
          if (input.conversationId) {
            if (!read.conversation) throw appError(ErrorCode.NOT_FOUND, { message: 'Conversation not found' });
            if (read.streamingIn.includes(input.conversationId)) {
              throw appError(ErrorCode.CONFLICT, { message: 'An answer is already being generated in this conversation' });
            }
          }
          if (read.streamingIn.length >= MAX_GENERATIONS_PER_USER) {
            throw appError(ErrorCode.CONFLICT, { message: `At most ${MAX_GENERATIONS_PER_USER} answers can be generated at once` });
          }
          const conversation: Conversation = read.conversation
            ? { ...toConversation({ ...read.conversation, generating: true }), updatedAt: now.toISOString() }
            : { id: randomUUID(), title: titleFrom(input.content), createdAt: now.toISOString(), updatedAt: now.toISOString(), generating: true };
          const userMessageId = input.id ?? randomUUID();
          const replyId = randomUUID();
          const message = (fields: Pick<Message, 'id' | 'role' | 'content' | 'status' | 'model' | 'createdAt'>): Message => ({
            conversationId: conversation.id,
            lastSeq: null,
            toolCalls: [],
            usage: null,
            stopReason: null,
            error: null,
            ...fields,
          });
          const userMessage = message({ id: userMessageId, role: 'user', content: input.content, status: 'complete', model: null, createdAt: now.toISOString() });
          const answer = message({ id: replyId, role: 'assistant', content: '', status: 'streaming', model: deps.model, createdAt: new Date(now.getTime() + 1).toISOString() });
          return {
            result: {
              started: {
                reply: { conversationId: conversation.id, userMessage, assistantMessageId: replyId },
                conversation,
                userMessage,
                answer,
                prompt: {
                  user: { fullName: read.user.fullName, timezone: read.user.timezone },
                  history: [...read.history, { role: 'user', content: input.content }],
                  openTasks: read.alongside,
                },
              },
            },
            writes: {
              conversation: { id: conversation.id, title: conversation.title, isNew: !read.conversation },
              userMessage: { id: userMessageId, content: input.content },
              reply: { id: replyId, nodeId: deps.nodeId, model: deps.model },
              now,
            },
          };
        });
      } catch (err) {
        if (isUniqueViolation(err)) {
          // another user's send took this id between our read and our insert
          if (input.id) {
            const raced = replayOf(userId, input, await chat.replay(input.id));
            if (raced) return raced;
          }
          throw appError(ErrorCode.CONFLICT, { message: 'This message id was already used' });
        }
        throw err;
      }
      if ('replay' in outcome) return outcome.replay;
      const { started } = outcome;
      // Known without asking the database again: it now has a streaming answer.
      broadcaster.toUser(userId, 'conversation:changed', { conversation: started.conversation });
      broadcaster.toUser(userId, 'chat:message', { message: started.userMessage });
      broadcaster.toUser(userId, 'chat:message', { message: started.answer });
      void assistant.start({ userId, conversationId: started.conversation.id, assistantMessageId: started.answer.id, prompt: started.prompt });
      return started.reply;
    },

    async cancel(userId, messageId) {
      const found = await chat.message(messageId, userId);
      if (!found) throw appError(ErrorCode.NOT_FOUND, { message: 'Message not found' });
      if (found.status !== 'streaming') return { message: toMessage(found) };
      if (!(await assistant.stop(messageId, 'cancelled'))) {
        broadcaster.toOtherNodes('chat:cancel', messageId);
        const deadline = Date.now() + 5_000;
        while (Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 100));
          const current = await chat.message(messageId);
          if (!current || current.status !== 'streaming') break;
        }
        // Nobody ran it any more (its node died): end it here.
        await markEnded(messageId, 'cancelled');
      }
      const final = await chat.message(messageId);
      if (!final) throw appError(ErrorCode.NOT_FOUND, { message: 'Message not found' });
      return { message: toMessage(final) };
    },

    async edit(userId, messageId, content) {
      const ack = await rerun(userId, messageId, { kind: 'edit', content });
      return { conversationId: ack.conversationId, userMessage: ack.userMessage!, assistantMessageId: ack.assistantMessageId };
    },

    async regenerate(userId, messageId) {
      const { conversationId, assistantMessageId } = await rerun(userId, messageId, { kind: 'regenerate' });
      return { conversationId, assistantMessageId };
    },

    async continue(userId, messageId) {
      const { conversationId, assistantMessageId } = await rerun(userId, messageId, { kind: 'continue' });
      return { conversationId, assistantMessageId };
    },

    async history(userId, { conversationId, before, limit = 50 }) {
      await ownedConversation(userId, conversationId);
      const rows = await chat.page(conversationId, limit, before);
      if (!rows) throw appError(ErrorCode.NOT_FOUND, { message: 'Message not found' });
      const hasMore = rows.length > limit;
      const page = rows.slice(0, limit).reverse();
      return { messages: await Promise.all(page.map(withBuffer)), hasMore };
    },

    async listConversations(userId, { before, limit = 50 }) {
      const rows = await chat.conversations(userId, limit, before === undefined ? undefined : new Date(before));
      return { conversations: rows.map(toConversation) };
    },

    async rename(userId, id, title) {
      const row = await chat.rename(userId, id, title.trim(), new Date());
      if (!row) throw appError(ErrorCode.NOT_FOUND, { message: 'Conversation not found' });
      const view = toConversation(row);
      broadcaster.toUser(userId, 'conversation:changed', { conversation: view });
      return { conversation: view };
    },

    async stopAllOf(userId) {
      await Promise.all((await chat.streamingOf(userId)).map(stopAnywhere));
    },

    async remove(userId, id) {
      await ownedConversation(userId, id);
      for (const messageId of await chat.streamingIn(id)) await stopAnywhere(messageId);
      await chat.deleteConversation(userId, id);
      broadcaster.toUser(userId, 'conversation:removed', { id });
      return { id };
    },

    async sweep() {
      const stale = await chat.staleStreaming(new Date(Date.now() - HEARTBEAT_TTL_MS));
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
      const { conversations, messages } = await chat.exportFor(userId);
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
