/**
 * Conversations and their messages (PROTOCOL §6.2). Streams are shared by all
 * tabs: every tab gets `chat:message`, numbered `chat:delta`s, `chat:tool` and
 * `chat:done`. A thread opened mid-answer loads `chat:history` and then applies
 * only the deltas after each message's `lastSeq` (CHAT-3). An edit or a
 * regenerate in any tab removes the messages after one (`chat:truncated`,
 * CHAT-10) before the new answer streams; a continued answer streams again
 * under its own id, its `seq` going on (CHAT-13).
 */
import type { ChatDelta, Conversation, Message, ToolCall } from '$shared/schemas/chat';
import type { WireError } from '$shared/errors';
import type { Connection } from '../../lib/connection.svelte';
import type { Toasts } from '../../lib/toasts.svelte';
import { describeError } from '../../lib/errors';
import { newId } from '../../lib/time';

type ThreadEvent =
  | { kind: 'message'; message: Message }
  | { kind: 'delta'; delta: ChatDelta }
  | { kind: 'tool'; messageId: string; toolCall: ToolCall }
  | { kind: 'done'; message: Message }
  | { kind: 'truncated'; afterMessageId: string };

type ThreadState = 'idle' | 'loading' | 'ready' | 'error';

const historyPage = 50;
/** how long after a tool call task changes still count as the assistant's */
const toolWindowMs = 3_000;

/** The message to keep when two copies of one meet: a final one beats a streaming one, else the further along. */
function merge(known: Message | undefined, incoming: Message): Message {
  if (!known) return incoming;
  if (incoming.status === 'streaming') {
    // A final one beats a streaming one, except an answer cut at max_tokens that goes on from where it stood (CHAT-13).
    if (known.status !== 'streaming') return known.stopReason === 'max_tokens' && incoming.lastSeq === known.lastSeq ? incoming : known;
    if ((incoming.lastSeq ?? -1) < (known.lastSeq ?? -1)) return known;
    const ids = new Set(incoming.toolCalls.map((t) => t.id));
    return { ...incoming, toolCalls: [...incoming.toolCalls, ...known.toolCalls.filter((t) => !ids.has(t.id))] };
  }
  return incoming;
}

function emptyAssistant(conversationId: string, id: string): Message {
  return {
    id,
    conversationId,
    role: 'assistant',
    content: '',
    status: 'streaming',
    lastSeq: null,
    toolCalls: [],
    usage: null,
    model: null,
    stopReason: null,
    error: null,
    createdAt: new Date().toISOString(),
  };
}

/** One conversation's messages as far as this tab has them. */
export class Thread {
  #messages = $state.raw<Message[]>([]);
  #state = $state<ThreadState>('idle');
  #hasMore = $state(false);
  #queue: ThreadEvent[] = [];
  /** deltas that arrived ahead of a gap, per message */
  #ahead = new Map<string, ChatDelta[]>();

  constructor(readonly id: string) {}

  get messages(): Message[] {
    return this.#messages;
  }
  get state(): ThreadState {
    return this.#state;
  }
  get hasMore(): boolean {
    return this.#hasMore;
  }
  /** The answer being written now, if any. */
  get streaming(): Message | undefined {
    return this.#messages.findLast((m) => m.role === 'assistant' && m.status === 'streaming');
  }

  beginLoad(): void {
    this.#state = 'loading';
    this.#queue = [];
  }

  /** History arrived: it is the truth up to each message's lastSeq; what came in meanwhile follows. */
  loaded(messages: Message[], hasMore: boolean): void {
    this.#messages = messages;
    this.#hasMore = hasMore;
    this.#ahead.clear();
    this.#state = 'ready';
    const queued = this.#queue;
    this.#queue = [];
    for (const event of queued) this.receive(event);
  }

  prepend(messages: Message[], hasMore: boolean): void {
    const known = new Set(this.#messages.map((m) => m.id));
    this.#messages = [...messages.filter((m) => !known.has(m.id)), ...this.#messages];
    this.#hasMore = hasMore;
  }

  failed(): void {
    this.#state = 'error';
    this.#queue = [];
  }

  /** Forget what this tab has; the next open loads history again. */
  invalidate(): void {
    this.#state = 'idle';
    this.#queue = [];
    this.#ahead.clear();
  }

  receive(event: ThreadEvent): void {
    if (this.#state === 'loading') {
      this.#queue.push(event);
      return;
    }
    // An unloaded thread will read history when opened, which already holds this.
    if (this.#state !== 'ready') return;
    switch (event.kind) {
      case 'message':
      case 'done':
        this.#put(event.message);
        if (event.kind === 'done') this.#ahead.delete(event.message.id);
        return;
      case 'tool': {
        const m = this.#find(event.messageId) ?? emptyAssistant(this.id, event.messageId);
        if (m.toolCalls.some((t) => t.id === event.toolCall.id)) return;
        this.#set({ ...m, toolCalls: [...m.toolCalls, event.toolCall] });
        return;
      }
      case 'delta':
        this.#delta(event.delta);
        return;
      case 'truncated':
        this.#truncate(event.afterMessageId);
    }
  }

  /**
   * Drops every message after `afterMessageId`. This tab holds the newest part of the conversation, so a message
   * it does not hold is older than all it holds: then all of it goes (older pages still load before what comes next).
   */
  #truncate(afterMessageId: string): void {
    const i = this.#messages.findIndex((m) => m.id === afterMessageId);
    const kept = this.#messages.slice(0, i + 1);
    for (const m of this.#messages.slice(i + 1)) this.#ahead.delete(m.id);
    if (kept.length !== this.#messages.length) this.#messages = kept;
  }

  #delta(delta: ChatDelta): void {
    let m = this.#find(delta.messageId) ?? emptyAssistant(this.id, delta.messageId);
    if (m.status !== 'streaming') return;
    const expected = (m.lastSeq ?? -1) + 1;
    if (delta.seq < expected) return; // already in the content (history, or a duplicate)
    if (delta.seq > expected) {
      const ahead = this.#ahead.get(m.id) ?? [];
      if (!ahead.some((d) => d.seq === delta.seq)) ahead.push(delta);
      this.#ahead.set(m.id, ahead);
      return;
    }
    let content = m.content + delta.text;
    let lastSeq = delta.seq;
    const ahead = this.#ahead.get(m.id);
    if (ahead) {
      ahead.sort((a, b) => a.seq - b.seq);
      while (ahead.length > 0 && ahead[0]!.seq <= lastSeq + 1) {
        const next = ahead.shift()!;
        if (next.seq === lastSeq + 1) {
          content += next.text;
          lastSeq = next.seq;
        }
      }
      if (ahead.length === 0) this.#ahead.delete(m.id);
    }
    m = { ...m, content, lastSeq };
    this.#set(m);
  }

  #find(id: string): Message | undefined {
    return this.#messages.find((m) => m.id === id);
  }

  #put(message: Message): void {
    this.#set(merge(this.#find(message.id), message));
  }

  #set(message: Message): void {
    const i = this.#messages.findIndex((m) => m.id === message.id);
    if (i >= 0) {
      if (this.#messages[i] === message) return;
      const next = [...this.#messages];
      next[i] = message;
      this.#messages = next;
    } else {
      this.#messages = [...this.#messages, message].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    }
  }
}

export interface ChatDeps {
  connection: Connection;
  toasts: Toasts;
  /** tasks the assistant touched, to mark them for a moment */
  onAssistantTasks: (ids: string[]) => void;
}

export class ChatStore {
  #conversations = $state.raw<Conversation[]>([]);
  #listState = $state<'idle' | 'loading' | 'ready' | 'error'>('idle');
  #activeId = $state<string | null>(null);
  #active = $state.raw<Thread | null>(null);
  #sending = $state(false);
  #streamingIds = $state.raw(new Set<string>());
  #lastToolAt = 0;
  #threads = new Map<string, Thread>();

  constructor(private readonly deps: ChatDeps) {
    const c = deps.connection;
    c.on('conversation:changed', ({ conversation }) => this.#upsertConversation(conversation));
    c.on('conversation:removed', ({ id }) => this.#removeConversation(id));
    c.on('chat:message', ({ message }) => {
      this.#trackStreaming(message);
      this.#thread(message.conversationId).receive({ kind: 'message', message });
    });
    c.on('chat:delta', (delta) => this.#thread(delta.conversationId).receive({ kind: 'delta', delta }));
    c.on('chat:tool', ({ conversationId, messageId, toolCall }) => {
      this.#lastToolAt = Date.now();
      this.deps.onAssistantTasks(taskIdsOf(toolCall.result));
      this.#thread(conversationId).receive({ kind: 'tool', messageId, toolCall });
    });
    c.on('chat:done', ({ conversationId, message }) => {
      this.#trackStreaming(message);
      this.#thread(conversationId).receive({ kind: 'done', message });
    });
    c.on('chat:truncated', ({ conversationId, afterMessageId }) => this.#thread(conversationId).receive({ kind: 'truncated', afterMessageId }));
    c.onReady(() => this.#resume());
  }

  get conversations(): Conversation[] {
    return this.#conversations;
  }
  get listState(): string {
    return this.#listState;
  }
  get activeId(): string | null {
    return this.#activeId;
  }
  get active(): Thread | null {
    return this.#active;
  }
  get activeConversation(): Conversation | undefined {
    return this.#conversations.find((c) => c.id === this.#activeId);
  }
  get sending(): boolean {
    return this.#sending;
  }
  /** True while an answer is being written in any tab, or a tool has just run. */
  get assistantActive(): boolean {
    return this.#streamingIds.size > 0 || this.#conversations.some((c) => c.generating) || Date.now() - this.#lastToolAt < toolWindowMs;
  }

  reset(): void {
    this.#conversations = [];
    this.#listState = 'idle';
    this.#activeId = null;
    this.#active = null;
    this.#threads.clear();
    this.#streamingIds = new Set();
  }

  async loadConversations(): Promise<void> {
    if (this.#listState === 'idle' || this.#listState === 'error') this.#listState = 'loading';
    const res = await this.deps.connection.request('conversation:list', { limit: 100 });
    if (!res.ok) {
      this.#listState = 'error';
      return;
    }
    const live = new Map(this.#conversations.map((c) => [c.id, c]));
    this.#conversations = res.data.conversations.map((c) => {
      const known = live.get(c.id);
      return known && known.updatedAt > c.updatedAt ? known : c;
    });
    this.#listState = 'ready';
  }

  /** Shows a conversation, loading its history unless this tab has it. */
  open(id: string | null): void {
    this.#activeId = id;
    if (id === null) {
      this.#active = null;
      return;
    }
    const thread = this.#thread(id);
    this.#active = thread;
    if (thread.state === 'idle' || thread.state === 'error') void this.#load(thread);
  }

  async loadOlder(): Promise<void> {
    const thread = this.#active;
    const first = thread?.messages[0];
    if (!thread || !first) return;
    const res = await this.deps.connection.request('chat:history', { conversationId: thread.id, before: first.id, limit: historyPage });
    if (res.ok) thread.prepend(res.data.messages, res.data.hasMore);
    else this.deps.toasts.show(`Could not load older messages: ${describeError(res.error)}`, 'error');
  }

  /** Sends `content` to the open conversation, or starts a new one. Resolves false when refused. */
  async send(content: string): Promise<boolean> {
    const conversationId = this.#activeId;
    this.#sending = true;
    const id = newId();
    const res = await this.deps.connection.request('chat:send', conversationId ? { conversationId, id, content } : { id, content }, 15_000);
    this.#sending = false;
    if (!res.ok) {
      const text =
        res.error.code === 'CONFLICT' ? 'Sam is still answering in this conversation. Stop it or wait for the answer.' : describeError(res.error);
      this.deps.toasts.show(`Message not sent: ${text}`, 'error');
      return false;
    }
    const thread = this.#thread(res.data.conversationId);
    thread.receive({ kind: 'message', message: res.data.userMessage });
    if (this.#activeId === conversationId) this.open(res.data.conversationId);
    return true;
  }

  /** Asks again: a failed or interrupted last answer is regenerated; an older one's question is sent again. */
  async retry(answer: Message): Promise<boolean> {
    const thread = this.#threads.get(answer.conversationId);
    const messages = thread?.messages ?? [];
    if (messages.at(-1)?.id === answer.id) return this.regenerate(answer);
    const index = messages.findIndex((m) => m.id === answer.id);
    const question = messages.slice(0, index < 0 ? messages.length : index).findLast((m) => m.role === 'user');
    if (!question) return false;
    if (this.#activeId !== answer.conversationId) this.open(answer.conversationId);
    return this.send(question.content);
  }

  /** CHAT-10: new text for one of the user's messages; what followed it goes, and a new answer comes. */
  async edit(message: Message, content: string): Promise<boolean> {
    const res = await this.deps.connection.request('chat:edit', { messageId: message.id, content }, 15_000);
    if (!res.ok) {
      this.deps.toasts.show(`Message not edited: ${this.#refusal(res.error)}`, 'error');
      return false;
    }
    this.#thread(res.data.conversationId).receive({ kind: 'message', message: res.data.userMessage });
    return true;
  }

  /** CHAT-10: a new answer in place of the conversation's last one. */
  async regenerate(answer: Message): Promise<boolean> {
    const res = await this.deps.connection.request('chat:regenerate', { messageId: answer.id }, 15_000);
    if (!res.ok) this.deps.toasts.show(`Could not regenerate: ${this.#refusal(res.error)}`, 'error');
    return res.ok;
  }

  /** CHAT-13: the last answer, stopped at its length limit, goes on. */
  async continue(answer: Message): Promise<boolean> {
    const res = await this.deps.connection.request('chat:continue', { messageId: answer.id }, 15_000);
    if (!res.ok) this.deps.toasts.show(`Could not continue: ${this.#refusal(res.error)}`, 'error');
    return res.ok;
  }

  #refusal(error: WireError): string {
    return error.code === 'CONFLICT' ? `${error.message}. Wait for the answer, or look at what another tab changed.` : describeError(error);
  }

  async stop(message: Message): Promise<void> {
    const res = await this.deps.connection.request('chat:cancel', { messageId: message.id });
    if (res.ok) this.#thread(message.conversationId).receive({ kind: 'done', message: res.data.message });
    else this.deps.toasts.show(`Could not stop the answer: ${describeError(res.error)}`, 'error');
  }

  async rename(id: string, title: string): Promise<boolean> {
    const res = await this.deps.connection.request('conversation:rename', { id, title });
    if (!res.ok) {
      this.deps.toasts.show(`Could not rename: ${describeError(res.error)}`, 'error');
      return false;
    }
    this.#upsertConversation(res.data.conversation);
    return true;
  }

  async remove(id: string): Promise<boolean> {
    const res = await this.deps.connection.request('conversation:delete', { id });
    if (!res.ok) {
      this.deps.toasts.show(`Could not delete: ${describeError(res.error)}`, 'error');
      return false;
    }
    this.#removeConversation(id);
    return true;
  }

  #thread(id: string): Thread {
    let thread = this.#threads.get(id);
    if (!thread) this.#threads.set(id, (thread = new Thread(id)));
    return thread;
  }

  async #load(thread: Thread): Promise<void> {
    thread.beginLoad();
    const res = await this.deps.connection.request('chat:history', { conversationId: thread.id, limit: historyPage });
    if (res.ok) thread.loaded(res.data.messages, res.data.hasMore);
    else {
      thread.failed();
      if (res.error.code === 'NOT_FOUND') this.#removeConversation(thread.id);
      else if (res.error.code !== 'UNAVAILABLE') this.deps.toasts.show(`Could not load the conversation: ${describeError(res.error)}`, 'error');
    }
  }

  /** After every (re)connect: pushes may have been missed, so read again what is shown. */
  #resume(): void {
    void this.loadConversations();
    for (const thread of this.#threads.values()) thread.invalidate();
    this.#streamingIds = new Set();
    if (this.#active) void this.#load(this.#active);
  }

  #trackStreaming(message: Message): void {
    if (message.role !== 'assistant') return;
    const has = this.#streamingIds.has(message.id);
    if (message.status === 'streaming' && !has) this.#streamingIds = new Set([...this.#streamingIds, message.id]);
    else if (message.status !== 'streaming' && has) {
      const next = new Set(this.#streamingIds);
      next.delete(message.id);
      this.#streamingIds = next;
    }
  }

  #upsertConversation(conversation: Conversation): void {
    const rest = this.#conversations.filter((c) => c.id !== conversation.id);
    this.#conversations = [conversation, ...rest].sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
  }

  #removeConversation(id: string): void {
    this.#conversations = this.#conversations.filter((c) => c.id !== id);
    this.#threads.delete(id);
    if (this.#activeId === id) {
      this.#activeId = null;
      this.#active = null;
    }
  }
}

/** Task ids in a tool result (`{ task }`, `{ task, next }`, `{ tasks }`, or a task itself). */
function taskIdsOf(result: unknown): string[] {
  const ids: string[] = [];
  const visit = (value: unknown, depth: number) => {
    if (depth > 2 || typeof value !== 'object' || value === null) return;
    const v = value as Record<string, unknown>;
    if (typeof v.id === 'string' && typeof v.version === 'number' && typeof v.title === 'string') ids.push(v.id);
    for (const key of ['task', 'next']) visit(v[key], depth + 1);
  };
  visit(result, 0);
  return ids;
}
