/**
 * The fault drill (README "Fault drill"): two Sam nodes (built `dist/`, production mode) on a PostgreSQL and a
 * Redis of the drill's own, the offline model as upstream, and simulated users with three tabs each spread over
 * both nodes, creating, editing, completing, deleting and purging tasks and chatting. Faults come one after
 * another; after each, with the load stopped, the drill checks the invariants against PostgreSQL and reports one
 * row. `npm run drill` (scripts/drill.ts) runs the full form, `test/drill.test.ts` a short one: the same code.
 *
 * The simulated tab behaves as the web client does (client/src/lib/connection.svelte.ts,
 * features/tasks/tasks.svelte.ts): it reconnects after any disconnect with a jittered backoff, catches up with
 * `task:sync { since }` after each `session:ready` and on a gap in `seq`, and retries a write it got no answer
 * for with the same id after it reconnects (TASK-1, CHAT-1). Each reconnect goes to the tab's own node if it
 * listens, else to the other one, as a load balancer with health checks would send it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { io, type Socket } from 'socket.io-client';
import type { Ack } from '../../shared/errors.js';
import type { AckData, ClientToServerEvents, RequestEvent, RequestPayload, ServerToClientEvents } from '../../shared/events.js';
import type { Task, TaskSyncResult } from '../../shared/schemas/tasks.js';
import { createAnthropicCompatibleServer, type AnthropicCompatibleServer } from '../../dev/offline-model/server.js';
import { migratedDatabase, startOwnPostgres, type OwnPostgres } from './postgres-server.js';
import { startOwnRedis, type OwnRedis } from './redis-server.js';
import { freePort } from './net.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export type FaultName = 'postgres-fast' | 'postgres-immediate' | 'redis-restart' | 'node-kill' | 'node-term' | 'redis-pause';
export const allFaults: FaultName[] = ['postgres-fast', 'postgres-immediate', 'redis-restart', 'node-kill', 'node-term', 'redis-pause'];

export interface DrillOptions {
  users: number;
  tabsPerUser: number;
  /** load before each fault */
  loadMs: number;
  /** each tab's pace: one action every this many ms on average */
  actionEveryMs: number;
  /** users whose sessions are revoked during each fault */
  revokePerFault: number;
  /** slow answers started on the victim node before a node fault */
  slowStreams: number;
  faults: FaultName[];
  /** progress lines */
  log: (line: string) => void;
}

export interface FaultReport {
  fault: FaultName;
  attempted: number;
  acknowledged: number;
  lost: number;
  duplicated: number;
  /** CONFLICT acks (another tab changed the task first): expected, not an error */
  conflicts: number;
  /** no ack in time, or UNAVAILABLE: the write may or may not have happened, which the checks allow */
  unanswered: number;
  /** from the end of the fault until every live tab was connected again */
  reconnectedMs: number;
  /** node faults: from the signal until every tab of the victim was live on the other node */
  movedMs: number | null;
  /** from the end of the fault until every live tab showed exactly what PostgreSQL holds */
  convergedMs: number | null;
  internalErrors: number;
  foreignEvents: number;
  revoked: number;
  revokedAccepted: number;
  /** nodes that exited on their own (the drill restarts them, as a process manager would) */
  crashes: number;
  /** answers running on a killed or drained node, and how they ended */
  streams: { expected: 'interrupted' | 'complete'; count: number; wrong: number } | null;
  problems: string[];
}

type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The `web:` line's node flags (Procfile): the nodes run as deployed. */
function webNodeFlags(): string[] {
  const web = /^web:\s*node\s+(.*?)\s*dist\/server\/main\.js\s*$/m.exec(fs.readFileSync(path.join(root, 'Procfile'), 'utf8'));
  return web ? web[1]!.split(/\s+/).filter(Boolean) : [];
}

/** One Sam process, restartable on the same port. */
class SamNode {
  child: ChildProcess | undefined;
  internalErrors = 0;
  /** the end of what the process wrote to stderr, for a crash's cause */
  stderrTail = '';
  /** set while the drill itself stops the node */
  private stopping = false;
  readonly url: string;
  private exited: Promise<number | null> = Promise.resolve(null);

  constructor(
    readonly nodeId: string,
    readonly port: number,
    private readonly env: Record<string, string>,
    private readonly logFile: string,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    const out = fs.createWriteStream(this.logFile, { flags: 'a' });
    const child = spawn(process.execPath, [...webNodeFlags(), path.join(root, 'dist/server/main.js')], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', PORT: String(this.port), NODE_ID: this.nodeId, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out.write(chunk);
      buffer += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        // An INTERNAL answer is logged as 'unhandled error' (server/http/errors.ts) or 'event failed' (define-handler.ts).
        if (line.includes('"unhandled error"') || line.includes('"event failed"')) this.internalErrors++;
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      out.write(chunk);
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-4_000);
    });
    this.stopping = false;
    this.stderrTail = '';
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`${this.nodeId} exited at start; see ${this.logFile}`);
      if ((await fetch(`${this.url}/health`).then((r) => r.status, () => 0)) === 200) return;
      await sleep(100);
    }
    throw new Error(`${this.nodeId} did not become healthy; see ${this.logFile}`);
  }

  /** It exited without the drill asking. */
  get crashed(): boolean {
    return this.child !== undefined && !this.running && !this.stopping;
  }

  async kill(): Promise<void> {
    if (!this.running) return;
    this.stopping = true;
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM: resolves with the exit code once the drain is over. */
  async term(): Promise<number | null> {
    if (!this.running) return this.child?.exitCode ?? null;
    this.stopping = true;
    this.child!.kill('SIGTERM');
    return this.exited;
  }
}

interface DrillUser {
  index: number;
  id: string;
  email: string;
  token: string;
  revoked: boolean;
  tabs: DrillTab[];
  /** answers this user asked for: assistant message id → the node that ran it */
  streams: Map<string, string>;
}

/** Everything the checks need: what was tried and what was acknowledged, per task and per chat message. */
class Ledger {
  /** task id → the versions acknowledged for it, with the write that was */
  readonly ackedVersions = new Map<string, { version: number; write: string }[]>();
  /** task id → changes attempted on it (answered or not) */
  readonly attemptedChanges = new Map<string, number>();
  /** task ids whose create was acknowledged, with their owner */
  readonly created = new Map<string, string>();
  /** task ids a purge was attempted for */
  readonly purgeTried = new Set<string>();
  readonly purged = new Set<string>();
  /** user message ids of `chat:send`s acknowledged, with their owner */
  readonly chats = new Map<string, string>();
  phase = {
    attempted: 0,
    acknowledged: 0,
    conflicts: 0,
    unanswered: 0,
    internal: 0,
  };

  reset(): void {
    this.phase = { attempted: 0, acknowledged: 0, conflicts: 0, unanswered: 0, internal: 0 };
  }
}

let tabCounter = 0;

class DrillTab {
  socket: ClientSocket | undefined;
  live = false;
  /** refused as revoked, or told so: it stops for good */
  dead = false;
  closing = false;
  readonly name = `t${tabCounter++}`;
  tasks = new Map<string, { version: number; status: Task['status']; seq: number }>();
  /**
   * Purged ids with the seq of their removal, as the web client keeps them: a push that left another node before
   * the purge can arrive after it (Redis held it: a pause, a restart's offline queue), and must not bring the task back.
   */
  private readonly tombstones = new Map<string, number>();
  seq: number | null = null;
  private syncing = false;
  private resync = false;
  private needsSync = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  /** writes with no answer: sent again, with the same id, after the next `session:ready` */
  private retries: (() => Promise<void>)[] = [];
  inFlight = 0;
  /** what this tab heard about: task ids and conversation ids (all must be its user's) */
  readonly heardTasks = new Set<string>();
  readonly heardConversations = new Set<string>();
  readonly heardMessages = new Set<string>();
  nodeId: string | undefined;
  /** prefer this node (its index) when it listens */
  constructor(
    readonly drill: Drill,
    readonly user: DrillUser,
    readonly home: number,
  ) {
    this.target = home;
  }

  /** the node of the current socket */
  private target: number;

  connect(nodeIndex = this.home): void {
    if (this.dead || this.closing) return;
    this.target = nodeIndex;
    const node = this.drill.nodes[nodeIndex]!;
    const socket: ClientSocket = io(node.url, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 5_000, auth: { token: this.user.token } });
    this.socket = socket;
    socket.on('session:ready', (ready) => {
      this.live = true;
      this.attempt = 0;
      this.nodeId = ready.nodeId;
      void this.sync(ready.taskSeq);
      for (const retry of this.retries.splice(0)) void retry();
    });
    socket.on('task:changed', ({ seq, task }) => {
      this.heardTasks.add(task.id);
      this.upsert(task);
      this.pushed(seq);
    });
    socket.on('task:removed', ({ seq, id }) => {
      this.heardTasks.add(id);
      this.remove(id, seq);
      this.pushed(seq);
    });
    socket.on('chat:delta', (d) => {
      this.heardConversations.add(d.conversationId);
      this.heardMessages.add(d.messageId);
    });
    socket.on('chat:done', (d) => {
      this.heardConversations.add(d.conversationId);
      this.heardMessages.add(d.message.id);
    });
    socket.on('conversation:changed', (d) => this.heardConversations.add(d.conversation.id));
    socket.on('session:revoked', () => {
      this.dead = true;
    });
    socket.on('disconnect', (reason) => {
      if (this.socket !== socket) return;
      this.live = false;
      if (this.dead || this.closing) return;
      // A node that closed us is draining: go elsewhere. A lost connection tries the same node first.
      this.reconnect(reason === 'io server disconnect');
    });
    socket.on('connect_error', (err) => {
      if (this.socket !== socket) return;
      this.live = false;
      if (err.message === 'TOKEN_REVOKED') {
        this.dead = true;
        if (!this.user.revoked) this.drill.problem(`${this.name}: a valid session was refused as TOKEN_REVOKED`);
        return;
      }
      this.reconnect(true);
    });
  }

  /** Reconnects after a jittered backoff, to the other node when `elsewhere` (a refused or closed attempt). */
  private reconnect(elsewhere: boolean): void {
    this.socket?.removeAllListeners();
    this.socket?.disconnect();
    clearTimeout(this.retryTimer);
    const delay = Math.min(2_000, 250 * 2 ** Math.min(this.attempt, 3)) * (0.5 + Math.random());
    const target = elsewhere ? 1 - this.target : this.target;
    this.attempt++;
    this.retryTimer = setTimeout(() => this.connect(target), delay);
  }

  /** Back to the tab's own node (after that node restarted), as a load balancer rebalancing would do. */
  goHome(): void {
    if (this.dead || this.closing || this.nodeId === this.drill.nodes[this.home]!.nodeId) return;
    this.live = false;
    this.socket?.removeAllListeners();
    this.socket?.disconnect();
    this.attempt = 0;
    this.connect(this.home);
  }

  close(): void {
    this.closing = true;
    clearTimeout(this.retryTimer);
    this.socket?.removeAllListeners();
    this.socket?.disconnect();
  }

  private remove(id: string, seq: number): void {
    this.tombstones.set(id, Math.max(seq, this.tombstones.get(id) ?? 0));
    this.tasks.delete(id);
  }

  private upsert(task: Task): void {
    if ((this.tombstones.get(task.id) ?? -1) > task.seq) return;
    const known = this.tasks.get(task.id);
    if (known && known.version >= task.version) return;
    this.tasks.set(task.id, { version: task.version, status: task.status, seq: task.seq });
  }

  private pushed(seq: number): void {
    if (this.syncing || this.seq === null) {
      this.resync = true;
      return;
    }
    if (seq === this.seq + 1) this.seq = seq;
    else if (seq > this.seq + 1) void this.sync(seq);
  }

  /** SYNC-1: what changed since the local `seq`; again while pushes arrived meanwhile. */
  async sync(serverSeq?: number): Promise<void> {
    if (this.syncing) {
      this.resync = true;
      return;
    }
    if (serverSeq !== undefined && this.seq !== null && this.seq >= serverSeq && !this.needsSync) return;
    this.syncing = true;
    try {
      do {
        this.resync = false;
        const since = this.seq ?? 0;
        const res = await this.request('task:sync', { since }, 10_000);
        if (!res?.ok) {
          if (res && !res.ok) this.drill.countError(res.error.code);
          // As the web client, a failed catch-up waits for the next chance; the drill's tab retries soon.
          this.needsSync = true;
          setTimeout(() => void this.sync(), 1_000).unref();
          return;
        }
        this.apply(res.data);
      } while (this.resync);
      this.needsSync = false;
    } finally {
      this.syncing = false;
    }
  }

  private apply(result: TaskSyncResult): void {
    if (result.reset) this.tasks.clear();
    for (const task of result.tasks) this.upsert(task);
    for (const id of result.removed) this.remove(id, result.seq);
    this.seq = result.reset ? result.seq : Math.max(this.seq ?? 0, result.seq);
  }

  async request<E extends RequestEvent>(event: E, payload: RequestPayload<E>, timeoutMs = 10_000): Promise<Ack<AckData[E]> | undefined> {
    const socket = this.socket;
    if (!socket?.connected) return undefined;
    this.inFlight++;
    try {
      return (await (socket.timeout(timeoutMs) as any).emitWithAck(event, payload)) as Ack<AckData[E]>;
    } catch {
      if (socket.connected) this.drill.noAnswer(event);
      return undefined;
    } finally {
      this.inFlight--;
    }
  }

  /** One action of the load, chosen by what this tab holds. */
  async act(): Promise<void> {
    if (!this.live || this.dead) return;
    const ledger = this.drill.ledger;
    const mine = [...this.tasks.entries()];
    const open = mine.filter(([, t]) => t.status !== 'deleted' && t.status !== 'completed');
    const trash = mine.filter(([, t]) => t.status === 'deleted');
    const roll = Math.random();
    if (roll < 0.04 && this.user.streams.size < 40) return void (await this.chat(false));
    if (roll < 0.34 || open.length === 0) {
      if (mine.length > 40) return;
      return this.create();
    }
    const pick = <T>(list: T[]) => list[Math.floor(Math.random() * list.length)]!;
    if (roll < 0.7) {
      const [id, t] = pick(open);
      return this.change(id, 'task:update', { id, expectedVersion: t.version, patch: { description: `edit ${randomBytes(4).toString('hex')}`, intensity: 1 + Math.floor(Math.random() * 5) } });
    }
    if (roll < 0.8) {
      const [id, t] = pick(open);
      return this.change(id, 'task:complete', { id, expectedVersion: t.version });
    }
    if (roll < 0.92 || trash.length === 0) {
      const [id, t] = pick(open);
      return this.change(id, 'task:delete', { id, expectedVersion: t.version });
    }
    const [id, t] = pick(trash);
    if (Math.random() < 0.5) return this.change(id, 'task:restore', { id, expectedVersion: t.version });
    ledger.purgeTried.add(id);
    return this.change(id, 'task:purge', { id, expectedVersion: t.version });
  }

  async create(id = randomUUID()): Promise<void> {
    const ledger = this.drill.ledger;
    ledger.phase.attempted++;
    const res = await this.request('task:create', { id, title: `drill ${id}` });
    if (res?.ok) {
      ledger.phase.acknowledged++;
      ledger.created.set(res.data.task.id, this.user.id);
      // A retried create answers the task as it now is (TASK-1), maybe at the version of a later change: only
      // the first one's version is its own.
      if (res.data.task.version === 1) ledger.ackedVersions.set(id, [...(ledger.ackedVersions.get(id) ?? []), { version: 1, write: `${this.name} task:create` }]);
      this.upsert(res.data.task);
      return;
    }
    this.unanswered(res, () => this.create(id));
  }

  private async change<E extends 'task:update' | 'task:complete' | 'task:delete' | 'task:restore' | 'task:purge'>(id: string, event: E, payload: RequestPayload<E>): Promise<void> {
    const ledger = this.drill.ledger;
    ledger.phase.attempted++;
    ledger.attemptedChanges.set(id, (ledger.attemptedChanges.get(id) ?? 0) + 1);
    const res = await this.request(event, payload);
    if (res?.ok) {
      ledger.phase.acknowledged++;
      const data = res.data as { task?: Task; id?: string };
      if (data.task) {
        ledger.ackedVersions.set(id, [...(ledger.ackedVersions.get(id) ?? []), { version: data.task.version, write: `${this.name} ${event} ${JSON.stringify(payload)}` }]);
        this.upsert(data.task);
      } else {
        ledger.purged.add(id);
      }
      return;
    }
    if (res && !res.ok && (res.error.code === 'CONFLICT' || res.error.code === 'NOT_FOUND')) {
      // Another tab of the user got there first: this one catches up.
      ledger.phase.conflicts++;
      void this.sync();
      return;
    }
    // A change is not retried blindly (its expectedVersion may be stale by then): the tab catches up instead.
    this.unanswered(res);
  }

  async chat(slow: boolean, id = randomUUID()): Promise<string | undefined> {
    const ledger = this.drill.ledger;
    ledger.phase.attempted++;
    const res = await this.request('chat:send', { id, content: `${slow ? '[slow] ' : ''}drill chat ${id}` });
    if (res?.ok) {
      ledger.phase.acknowledged++;
      ledger.chats.set(id, this.user.id);
      this.user.streams.set(res.data.assistantMessageId, this.nodeId ?? '?');
      this.heardConversations.add(res.data.conversationId);
      return res.data.assistantMessageId;
    }
    if (res && !res.ok && res.error.code === 'CONFLICT') {
      // CHAT-1: two answers at once per user at most.
      ledger.phase.conflicts++;
      return undefined;
    }
    this.unanswered(res, () => this.chat(slow, id).then(() => undefined));
    return undefined;
  }

  private unanswered(res: Ack<unknown> | undefined, retry?: () => Promise<void>): void {
    const ledger = this.drill.ledger;
    if (res && !res.ok) {
      this.drill.countError(res.error.code);
      if (res.error.code !== 'UNAVAILABLE') return;
    }
    ledger.phase.unanswered++;
    if (retry) this.retries.push(retry);
    void this.sync();
  }
}

export class Drill {
  nodes: SamNode[] = [];
  users: DrillUser[] = [];
  readonly ledger = new Ledger();
  private pg!: OwnPostgres;
  private redis!: OwnRedis;
  private upstream!: AnthropicCompatibleServer;
  private sql!: postgres.Sql;
  private loadOn = false;
  private loops: Promise<void>[] = [];
  private endLoad: () => void = () => undefined;
  private problems: string[] = [];
  readonly logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sam-drill-'));
  private env: Record<string, string> = {};
  httpErrors = 0;

  constructor(readonly options: DrillOptions) {}

  problem(text: string): void {
    if (this.problems.length < 50) this.problems.push(text);
  }

  /** events that got no answer in time on a socket that stayed connected, by name */
  readonly noAnswers = new Map<string, number>();
  noAnswer(event: string): void {
    this.noAnswers.set(event, (this.noAnswers.get(event) ?? 0) + 1);
  }

  countError(code: string): void {
    if (code === 'INTERNAL') {
      this.ledger.phase.internal++;
      this.problem('an ack was INTERNAL');
    }
  }

  get tabs(): DrillTab[] {
    return this.users.flatMap((u) => u.tabs);
  }

  async start(): Promise<void> {
    const { log } = this.options;
    this.pg = await startOwnPostgres();
    this.redis = await startOwnRedis();
    const databaseUrl = await migratedDatabase(this.pg.url('sam_drill'));
    this.sql = postgres(databaseUrl, { max: 2, onnotice: () => undefined });
    // `[slow]` answers take about 9 s, so that they are running when a node goes; others are quick.
    this.upstream = await createAnthropicCompatibleServer({
      deltaDelayMs: 5,
      script: (req) => {
        const last = req.params.messages.at(-1);
        const text = typeof last?.content === 'string' ? last.content : '';
        return text.includes('[slow]') ? { kind: 'text', text: 'slowly '.repeat(90), chunkSize: 4, delayMs: 60 } : undefined;
      },
    });
    this.env = {
      ENVIRONMENT: 'production',
      SECRET_KEY: randomBytes(32).toString('base64url'),
      DATABASE_URL: databaseUrl,
      REDIS_URL: this.redis.url,
      REDIS_PREFIX: 'drill:',
      METRICS_TOKEN: randomBytes(24).toString('base64url'),
      ANTHROPIC_API_KEY: randomBytes(24).toString('base64url'),
      ANTHROPIC_BASE_URL: this.upstream.url,
      ANTHROPIC_MODEL: 'claude-drill',
      HIBP_API_URL: 'off',
      RATE_LIMIT_PER_MINUTE: '1000000',
      SOCKET_EVENTS_PER_MINUTE: '100000',
      CHAT_MESSAGES_PER_MINUTE: '1000',
      ACCESS_TOKEN_EXPIRE_MINUTES: '120',
      LOG_LEVEL: 'info',
      DRAIN_TIMEOUT_MS: '20000',
    };
    const ports = [await freePort(), await freePort()];
    this.nodes = ['drill-a', 'drill-b'].map((id, i) => new SamNode(id, ports[i]!, this.env, path.join(this.logDir, `${id}.log`)));
    await Promise.all(this.nodes.map((n) => n.start()));
    log(`nodes ${this.nodes.map((n) => n.url).join(', ')}; PostgreSQL ${this.pg.url()}; Redis ${this.redis.url}; logs in ${this.logDir}`);

    const started = Date.now();
    let next = 0;
    const signUpOne = async (): Promise<void> => {
      while (next < this.options.users) {
        const index = next++;
        const node = this.nodes[index % 2]!;
        const email = `drill-${index}-${randomUUID().slice(0, 8)}@example.test`;
        const res = await fetch(`${node.url}/api/v1/auth/signup`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email, password: `Drill-${randomBytes(9).toString('base64url')}9a!Z` }),
        });
        if (res.status !== 201) throw new Error(`signup failed: ${res.status} ${await res.text()}`);
        const body = (await res.json()) as { accessToken: string; user: { id: string } };
        const user: DrillUser = { index, id: body.user.id, email, token: body.accessToken, revoked: false, tabs: [], streams: new Map() };
        user.tabs = Array.from({ length: this.options.tabsPerUser }, (_, t) => new DrillTab(this, user, (index + t) % 2));
        this.users[index] = user;
      }
    };
    await Promise.all(Array.from({ length: 4 }, signUpOne));
    log(`${this.users.length} users signed up in ${Date.now() - started} ms`);
    // Tabs connect a few at a time, as users arrive.
    for (const tab of this.tabs) {
      tab.connect();
      await sleep(2);
    }
    await this.waitLive(60_000);
    log(`${this.tabs.length} tabs live in ${Date.now() - started} ms`);
  }

  private liveTabs(): DrillTab[] {
    return this.tabs.filter((t) => !t.dead);
  }

  /** Resolves with the ms until every tab that is not revoked is connected. */
  private async waitLive(timeoutMs: number): Promise<number> {
    const started = Date.now();
    while (this.liveTabs().some((t) => !t.live)) {
      if (Date.now() - started > timeoutMs) {
        const stuck = this.liveTabs().filter((t) => !t.live).length;
        throw new Error(`${stuck} tabs did not reconnect within ${timeoutMs} ms`);
      }
      await sleep(50);
    }
    return Date.now() - started;
  }

  private startLoad(): void {
    this.loadOn = true;
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    this.endLoad = stop;
    const every = this.options.actionEveryMs;
    const pause = (ms: number) => Promise.race([sleep(ms), stopped]);
    this.loops = this.tabs.map(async (tab) => {
      await pause(Math.random() * every);
      while (this.loadOn && !tab.dead) {
        await tab.act().catch((err: unknown) => this.problem(`${tab.name}: ${(err as Error).message}`));
        await pause(every * (0.5 + Math.random()));
      }
    });
  }

  /** Stops the load and waits for the writes in flight to be answered (or to time out). */
  private async stopLoad(): Promise<void> {
    this.loadOn = false;
    this.endLoad();
    await Promise.all(this.loops);
    while (this.tabs.some((t) => t.inFlight > 0)) await sleep(50);
  }

  /**
   * Restarts the nodes that exited on their own, as the platform would, and sends their tabs back. Each crash is
   * counted and is a broken invariant.
   */
  private async restartCrashed(): Promise<number> {
    let crashes = 0;
    for (const node of this.nodes) {
      if (!node.crashed) continue;
      crashes++;
      this.options.log(`${node.nodeId} crashed; restarting it`);
      this.problem(`${node.nodeId} crashed: ${node.stderrTail.slice(-600)}`);
      await this.waitLive(30_000);
      await node.start();
      for (const tab of this.liveTabs()) tab.goHome();
    }
    return crashes;
  }

  /** Logs the users out through REST (AUTH-7): their sockets must close, their token must be refused everywhere. */
  private async revokeSome(count: number): Promise<DrillUser[]> {
    const candidates = this.users.filter((u) => !u.revoked);
    const chosen = candidates.slice(candidates.length - count);
    await Promise.all(
      chosen.map(async (user) => {
        for (let attempt = 0; attempt < 40; attempt++) {
          const node = this.nodes.find((n) => n.running) ?? this.nodes[0]!;
          const res = await fetch(`${node.url}/api/v1/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${user.token}` } }).catch(() => undefined);
          if (res?.status === 500) {
            this.httpErrors++;
            this.problem('logout answered 500');
          }
          if (res?.status === 204) {
            user.revoked = true;
            return;
          }
          // PostgreSQL away (503), or the node restarting: as a person would, try again a moment later.
          await sleep(500);
        }
        this.problem(`logout of ${user.email} never succeeded`);
      }),
    );
    return chosen.filter((u) => u.revoked);
  }

  /** The token of each revoked user is refused on every node, and none of their tabs is still connected. */
  private async checkRevoked(users: DrillUser[]): Promise<number> {
    let accepted = 0;
    for (const user of users) {
      const deadline = Date.now() + 10_000;
      while (user.tabs.some((t) => t.socket?.connected) && Date.now() < deadline) await sleep(100);
      for (const tab of user.tabs) {
        if (tab.socket?.connected) {
          accepted++;
          this.problem(`${tab.name} of a revoked session is still connected`);
        }
        tab.close();
      }
      for (const node of this.nodes) {
        const verdict = await handshake(node.url, user.token);
        if (verdict !== 'TOKEN_REVOKED') {
          accepted++;
          this.problem(`a revoked token got "${verdict}" from ${node.nodeId}`);
        }
      }
    }
    return accepted;
  }

  /** Starts slow answers from tabs on `node`; resolves with their assistant message ids once each has begun. */
  private async slowStreamsOn(node: SamNode, count: number): Promise<string[]> {
    const tabs = this.liveTabs().filter((t) => t.live && t.nodeId === node.nodeId);
    const byUser = new Map<string, DrillTab>();
    for (const tab of tabs) if (!byUser.has(tab.user.id)) byUser.set(tab.user.id, tab);
    const ids: string[] = [];
    for (const tab of [...byUser.values()].slice(0, count)) {
      const id = await tab.chat(true);
      if (id) ids.push(id);
    }
    // Begun: the first delta is in Redis's buffer and the message is `streaming`.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const rows = await this.sql<{ n: number }[]>`select count(*)::int as n from messages where id = any(${ids}::uuid[]) and status = 'streaming'`;
      if (rows[0]!.n === ids.length) break;
      await sleep(100);
    }
    await sleep(500);
    return ids;
  }

  /** How the answers ended: each must end as `expected` (CHAT-7 gives a dead node's 60 s). */
  private async streamsEnded(ids: string[], expected: 'interrupted' | 'complete'): Promise<{ expected: 'interrupted' | 'complete'; count: number; wrong: number }> {
    const deadline = Date.now() + 65_000;
    let rows: { id: string; status: string }[] = [];
    while (Date.now() < deadline) {
      rows = await this.sql<{ id: string; status: string }[]>`select id, status from messages where id = any(${ids}::uuid[])`;
      if (rows.every((r) => r.status !== 'streaming')) break;
      await sleep(500);
    }
    const wrong = rows.filter((r) => r.status !== expected);
    for (const r of wrong) this.problem(`answer ${r.id} ended ${r.status}, not ${expected}`);
    return { expected, count: ids.length, wrong: wrong.length + (ids.length - rows.length) };
  }

  /** The invariants against PostgreSQL: lost and duplicated writes, tabs equal to the database. */
  private async checkWrites(): Promise<{ lost: number; duplicated: number }> {
    const { ledger } = this;
    const rows = await this.sql<{ id: string; user_id: string; version: number; title: string }[]>`select id, user_id, version, title from tasks`;
    const stored = new Map(rows.map((r) => [r.id, r]));
    let lost = 0;
    let duplicated = 0;
    for (const [id, owner] of ledger.created) {
      const row = stored.get(id);
      if (!row) {
        if (ledger.purgeTried.has(id)) continue;
        lost++;
        this.problem(`task ${id} was acknowledged and is not in PostgreSQL`);
      } else if (row.user_id !== owner) {
        lost++;
        this.problem(`task ${id} belongs to another user`);
      }
    }
    for (const [id, acks] of ledger.ackedVersions) {
      const row = stored.get(id);
      if (!row) continue;
      const versions = acks.map((a) => a.version);
      if (new Set(versions).size !== versions.length) {
        lost++;
        this.problem(`task ${id}: two writes were acknowledged at the same version: ${acks.map((a) => `${a.version} ${a.write}`).join('; ')}`);
      }
      if (Math.max(...versions) > row.version) {
        lost++;
        this.problem(`task ${id}: version ${Math.max(...versions)} was acknowledged, PostgreSQL holds ${row.version}`);
      }
      // Every change goes through the drill: a version past 1 + the changes tried means one was applied twice.
      if (row.version > 1 + (ledger.attemptedChanges.get(id) ?? 0)) {
        duplicated++;
        this.problem(`task ${id}: version ${row.version} after ${ledger.attemptedChanges.get(id) ?? 0} changes`);
      }
    }
    for (const id of ledger.purged) {
      if (stored.has(id)) {
        lost++;
        this.problem(`task ${id}: its purge was acknowledged and it is still there`);
      }
    }
    const titles = new Map<string, number>();
    for (const r of rows) titles.set(r.title, (titles.get(r.title) ?? 0) + 1);
    for (const [title, n] of titles) {
      if (n > 1) {
        duplicated += n - 1;
        this.problem(`${n} tasks titled ${title}`);
      }
    }
    const messages = await this.sql<{ id: string; user_id: string; content: string }[]>`select id, user_id, content from messages where role = 'user'`;
    const messageIds = new Map(messages.map((m) => [m.id, m.user_id]));
    for (const [id, owner] of ledger.chats) {
      if (messageIds.get(id) !== owner) {
        lost++;
        this.problem(`chat message ${id} was acknowledged and is not in PostgreSQL`);
      }
    }
    const contents = new Map<string, number>();
    for (const m of messages) contents.set(m.content, (contents.get(m.content) ?? 0) + 1);
    for (const [content, n] of contents) {
      if (n > 1) {
        duplicated += n - 1;
        this.problem(`${n} chat messages "${content}"`);
      }
    }
    return { lost, duplicated };
  }

  /** Every live tab holds exactly the tasks PostgreSQL holds for its user, at the same versions; the ms it took. */
  private async waitConverged(since: number, timeoutMs: number): Promise<number | null> {
    const deadline = Date.now() + timeoutMs;
    let differing: string[] = [];
    for (;;) {
      const rows = await this.sql<{ id: string; user_id: string; version: number }[]>`select id, user_id, version from tasks`;
      const byUser = new Map<string, Map<string, number>>();
      for (const r of rows) {
        let m = byUser.get(r.user_id);
        if (!m) byUser.set(r.user_id, (m = new Map()));
        m.set(r.id, r.version);
      }
      differing = [];
      for (const tab of this.liveTabs()) {
        const truth = byUser.get(tab.user.id) ?? new Map<string, number>();
        const same = tab.live && tab.tasks.size === truth.size && [...truth].every(([id, v]) => tab.tasks.get(id)?.version === v);
        if (!same) differing.push(tab.name);
      }
      if (differing.length === 0) return Date.now() - since;
      if (Date.now() > deadline) {
        // What the first of them holds wrongly (task: the tab's version / PostgreSQL's, '-' for none), to tell a
        // stale or resurrected task from a missing one.
        const first = this.liveTabs().find((t) => t.name === differing[0])!;
        const truth = byUser.get(first.user.id) ?? new Map<string, number>();
        const wrong = [...new Set([...truth.keys(), ...first.tasks.keys()])]
          .filter((id) => first.tasks.get(id)?.version !== truth.get(id))
          .slice(0, 3)
          .map((id) => `${id.slice(0, 8)} ${first.tasks.get(id)?.version ?? '-'}/${truth.get(id) ?? '-'}`);
        this.problem(`${differing.length} tabs did not converge: ${differing.slice(0, 5).join(', ')} (${first.name}: ${wrong.join(', ')}; live ${first.live})`);
        return null;
      }
      await sleep(250);
    }
  }

  /** No tab heard of a task or a conversation of another user. */
  private async foreignEvents(): Promise<number> {
    const tasks = new Map((await this.sql<{ id: string; user_id: string }[]>`select id, user_id from tasks`).map((r) => [r.id, r.user_id]));
    const conversations = new Map((await this.sql<{ id: string; user_id: string }[]>`select id, user_id from conversations`).map((r) => [r.id, r.user_id]));
    const messages = new Map((await this.sql<{ id: string; user_id: string }[]>`select id, user_id from messages`).map((r) => [r.id, r.user_id]));
    let foreign = 0;
    for (const tab of this.tabs) {
      const check = (ids: Set<string>, owners: Map<string, string>, what: string) => {
        for (const id of ids) {
          const owner = owners.get(id);
          // A purged task has no row left: its owner was checked while it existed.
          if (owner !== undefined && owner !== tab.user.id) {
            foreign++;
            this.problem(`${tab.name} heard of ${what} ${id} of another user`);
          }
        }
      };
      check(tab.heardTasks, tasks, 'task');
      check(tab.heardConversations, conversations, 'conversation');
      check(tab.heardMessages, messages, 'message');
    }
    return foreign;
  }

  /** Runs one fault: load, the fault (with revocations during it), then the checks with the load stopped. */
  async fault(name: FaultName): Promise<FaultReport> {
    const { log } = this.options;
    this.ledger.reset();
    this.problems = [];
    const internalBefore = this.nodes.reduce((n, node) => n + node.internalErrors, 0);
    const httpBefore = this.httpErrors;
    this.startLoad();
    await sleep(this.options.loadMs);
    const victim = this.nodes[name === 'node-kill' ? 0 : 1]!;
    let streams: string[] = [];
    if (name === 'node-kill' || name === 'node-term') streams = await this.slowStreamsOn(victim, this.options.slowStreams);
    log(`${name}: injecting`);
    const revoking = sleep(300).then(() => this.revokeSome(this.options.revokePerFault));
    let termExit: number | null = null;
    let movedMs: number | null = null;
    switch (name) {
      case 'postgres-fast':
      case 'postgres-immediate':
        // Down for 2 s, long enough for writes to meet it.
        await this.pg.down(name === 'postgres-fast' ? 'fast' : 'immediate');
        await sleep(2_000);
        await this.pg.up();
        break;
      case 'redis-restart':
        await this.redis.stop();
        await sleep(2_000);
        await this.redis.start();
        await this.redis.flushAll();
        break;
      case 'node-kill':
      case 'node-term': {
        const moving = this.liveTabs().filter((t) => t.nodeId === victim.nodeId);
        const signalled = Date.now();
        const exit = name === 'node-kill' ? victim.kill().then(() => null) : victim.term();
        while (!moving.every((t) => t.dead || (t.live && t.nodeId !== victim.nodeId)) && Date.now() - signalled < 30_000) await sleep(20);
        movedMs = Date.now() - signalled;
        termExit = await exit;
        break;
      }
      case 'redis-pause':
        this.redis.pause();
        await sleep(10_000);
        this.redis.resume();
        break;
    }
    const revoked = await revoking;
    if (name === 'node-term' && termExit !== 0) this.problem(`the drained node exited ${termExit}`);
    const healed = Date.now();
    // The load stops with the fault: what the tabs show now must come from reconnecting and catching up alone.
    await this.stopLoad();
    const crashes = await this.restartCrashed();
    if (name === 'node-kill' || name === 'node-term') {
      // The other node took the victim's tabs; now the victim comes back and they return to it.
      await this.waitLive(30_000);
      await victim.start();
      for (const tab of this.liveTabs()) tab.goHome();
    }
    const reconnectedMs = await this.waitLive(60_000).then(() => Date.now() - healed);
    const convergedMs = await this.waitConverged(healed, 60_000);
    const { lost, duplicated } = await this.checkWrites();
    const revokedAccepted = await this.checkRevoked(revoked);
    const foreign = await this.foreignEvents();
    const ended = streams.length > 0 ? await this.streamsEnded(streams, name === 'node-kill' ? 'interrupted' : 'complete') : null;
    const internal = this.ledger.phase.internal + this.nodes.reduce((n, node) => n + node.internalErrors, 0) - internalBefore + this.httpErrors - httpBefore;
    const report: FaultReport = {
      fault: name,
      ...this.ledger.phase,
      lost,
      duplicated,
      reconnectedMs,
      movedMs,
      convergedMs,
      internalErrors: internal,
      foreignEvents: foreign,
      revoked: revoked.length,
      revokedAccepted,
      crashes,
      streams: ended,
      problems: [...this.problems],
    };
    log(`${name}: ${JSON.stringify({ ...report, problems: report.problems.length, noAnswer: Object.fromEntries(this.noAnswers) })}`);
    this.noAnswers.clear();
    for (const p of report.problems.slice(0, 10)) log(`  ${p}`);
    return report;
  }

  async stop(): Promise<void> {
    this.loadOn = false;
    for (const tab of this.tabs) tab.close();
    await Promise.all(this.nodes.map((n) => n.term().catch(() => null)));
    await this.sql?.end({ timeout: 2 });
    await this.upstream?.close();
    await this.redis?.[Symbol.asyncDispose]();
    await this.pg?.stop().catch(() => undefined);
  }
}

/** What a handshake with `token` ends in: 'ok' or the connect_error message. */
function handshake(url: string, token: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 5_000, auth: { token } });
    const done = (verdict: string) => {
      socket.removeAllListeners();
      socket.disconnect();
      resolve(verdict);
    };
    socket.once('session:ready', () => done('ok'));
    socket.once('connect_error', (err) => done(err.message));
  });
}

/** Whether a report meets every invariant. */
export function holds(r: FaultReport): boolean {
  return (
    r.lost === 0 &&
    r.duplicated === 0 &&
    r.convergedMs !== null &&
    r.internalErrors === 0 &&
    r.foreignEvents === 0 &&
    r.revokedAccepted === 0 &&
    (r.streams === null || r.streams.wrong === 0) &&
    (r.fault !== 'node-term' || (r.movedMs !== null && r.movedMs < 5_000)) &&
    r.problems.length === 0
  );
}

/** The drill's table: one row per fault. */
export function formatTable(reports: FaultReport[]): string {
  const head = ['fault', 'attempted', 'acked', 'lost', 'dup', 'conflict', 'unanswered', 'moved s', 'reconnect s', 'converged s', '500s', 'foreign', 'revoked ok', 'streams', 'crashes', 'holds'];
  const rows = reports.map((r) => [
    r.fault,
    String(r.attempted),
    String(r.acknowledged),
    String(r.lost),
    String(r.duplicated),
    String(r.conflicts),
    String(r.unanswered),
    r.movedMs === null ? '-' : (r.movedMs / 1000).toFixed(1),
    (r.reconnectedMs / 1000).toFixed(1),
    r.convergedMs === null ? 'never' : (r.convergedMs / 1000).toFixed(1),
    String(r.internalErrors),
    String(r.foreignEvents),
    `${r.revoked - Math.min(r.revoked, r.revokedAccepted)}/${r.revoked}`,
    r.streams ? `${r.streams.count - r.streams.wrong}/${r.streams.count} ${r.streams.expected}` : '-',
    String(r.crashes),
    holds(r) ? 'yes' : 'NO',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** Starts everything, runs each fault, stops everything; the reports in order. */
export async function runDrill(options: DrillOptions): Promise<FaultReport[]> {
  const drill = new Drill(options);
  const reports: FaultReport[] = [];
  try {
    await drill.start();
    for (const fault of options.faults) reports.push(await drill.fault(fault));
  } finally {
    await drill.stop();
  }
  return reports;
}
