/**
 * RT-7: every socket joins `user:<id>` and `session:<id>`, in every namespace.
 * A broadcast is delivered to this node's sockets at once and reaches the other
 * nodes through the Redis adapter, the sender's own socket included;
 * revocations close a session's sockets in every namespace.
 */
import type { Namespace } from 'socket.io';
import type { ServerToClientEvents } from '../../shared/events.js';
import type { RevocationReason } from '../../shared/constants.js';
import type { AppServer, InterServerEvents, RoomPayload } from './types.js';
import { isBusy, whenIdle } from './in-flight.js';
import { flushScheduler } from '../batch.js';

export const userRoom = (userId: string) => `user:${userId}`;
export const sessionRoom = (sessionId: string) => `session:${sessionId}`;

/** How often a node counts the nodes listening on the adapter, to learn that it is alone, or no longer is. */
export const PEER_CHECK_MS = 5_000;
/** How long a node's announcement waits at most for the other nodes to answer it (the adapter's request timeout is 3 s). */
const ANNOUNCE_TIMEOUT_MS = 4_000;

/** The subscribing connection of the adapter, as `watchPeers` needs it. */
interface Subscriber {
  readonly status: string;
  ping(): Promise<unknown>;
  on(event: 'ready', fn: () => void): unknown;
  off(event: 'ready', fn: () => void): unknown;
}

type EventArgs<E extends keyof ServerToClientEvents> = Parameters<ServerToClientEvents[E]>;

/**
 * Emits to rooms once the Socket.IO server exists; features depend on this, not on Socket.IO.
 *
 * The other nodes get the broadcasts of one event-loop turn (while busy, of up to 2 ms) in one adapter message
 * (`rooms:emit`), not one PUBLISH each: each PUBLISH is a write to Redis, a wake-up of Redis and a message that
 * every node, this one included, receives and decodes; under load those cost more than the local delivery
 * (bench/README.md, "Redis commands"). Redis keeps the order of one publisher's messages, and every message that goes through the
 * adapter directly (a revocation, `toOtherNodes`) first sends what is waiting, so a user's events stay in order
 * on every node.
 *
 * A node that no other node listens to sends nothing to Redis at all (`watchPeers`): a single-node deployment
 * then pays nothing for the adapter on its broadcasts.
 */
export class Broadcaster {
  private io: AppServer | undefined;
  private readonly listeners = new Set<() => void>();
  /** namespaces besides the default one whose sockets revocations close too (`/ops`) */
  private readonly namespaces: Namespace[] = [];

  private readonly nodeHandlers: { event: keyof InterServerEvents; fn: (...args: any[]) => void }[] = [];
  /** this turn's broadcasts, for the other nodes */
  private outbox: RoomPayload[] = [];
  /**
   * The outbox goes at the end of the turn; while busy, a lone broadcast waits up to 2 ms for company, as a
   * batched lookup does (`batch.ts`): at steady rates a turn holds about one broadcast, and each message costs
   * every node a receipt.
   */
  private readonly scheduler = flushScheduler(() => this.flush(), () => this.outbox.length, { windowMs: 2 });
  /** no other node listens: broadcasts stay on this node (`watchPeers`) */
  private alone = false;
  /** announcements heard from other nodes, so that a count of the nodes taken meanwhile is not trusted */
  private hellos = 0;
  private onAloneChange: ((alone: boolean) => void) | undefined;

  /**
   * `reachable` tells whether Redis, and through it the other nodes, can be
   * reached: while it cannot, broadcasts go to this node's sockets only
   * (instead of piling up in the adapter's queue); the tabs on other nodes
   * catch up from PostgreSQL (SYNC-1).
   */
  constructor(private readonly reachable: () => boolean = () => true) {
    this.onNodeEvent('rooms:emit', (items) => this.emitHere(items));
    // Answered only once this node sends its broadcasts again: the announcing node waits for it before it takes sockets.
    this.onNodeEvent('node:hello', (ack) => {
      this.hellos++;
      this.setAlone(false);
      ack(true);
    });
  }

  /**
   * Whether anything should go to the other nodes: not while Redis is away (they catch up from PostgreSQL when it
   * returns, SYNC-1), nor while no other node listens.
   */
  private othersListen(): boolean {
    return !this.alone && this.reachable();
  }

  private setAlone(alone: boolean): void {
    if (this.alone === alone) return;
    this.alone = alone;
    this.onAloneChange?.(alone);
  }

  /**
   * Keeps the broadcasts of this node off Redis while no other node listens (a deployment of one node), and
   * sends them again as soon as another may. The rules that keep every tab's events:
   * - A node is alone only when the adapter's count of listening nodes (PUBSUB NUMSUB), taken while its own
   *   subscription is up, is 1, and no node announced itself while it was taken; it is counted again every
   *   PEER_CHECK_MS.
   * - A node announces itself when its subscription is up (at start, and after every reconnection), once the
   *   subscription's commands are through (a PING behind them), and each other node, before it answers, sends
   *   its broadcasts again. `ready` resolves once the others answered (at most ANNOUNCE_TIMEOUT_MS): the gateway
   *   takes no socket before, so no tab of this node can miss a broadcast of another.
   * Returns `known`, true once `ready` resolved (the gateway's handshakes read it rather than await each time),
   * and `stop` for the server's close.
   */
  watchPeers(subscriber: Subscriber, onChange?: (alone: boolean) => void): { ready: Promise<void>; readonly known: boolean; stop(): void } {
    this.onAloneChange = onChange;
    let stopped = false;
    const count = async () => {
      const io = this.io;
      if (!io || stopped || subscriber.status !== 'ready') return this.setAlone(false);
      const hellos = this.hellos;
      let nodes: number;
      try {
        nodes = await io.of('/').adapter.serverCount();
      } catch {
        return this.setAlone(false);
      }
      this.setAlone(nodes === 1 && hellos === this.hellos && subscriber.status === 'ready' && !stopped);
    };
    const announce = async () => {
      const io = this.io;
      if (!io || stopped) return;
      try {
        await subscriber.ping();
        // Resolves once every other node answered, each having started to send its broadcasts again.
        await io.serverSideEmitWithAck('node:hello');
      } catch {
        // unanswered (a node that died unseen, Redis away): the count below decides
      }
      await count();
    };
    let timer: NodeJS.Timeout | undefined;
    const ready = Promise.race([announce(), new Promise<void>((resolve) => (timer = setTimeout(resolve, ANNOUNCE_TIMEOUT_MS)))]).finally(() =>
      clearTimeout(timer),
    );
    let known = false;
    void ready.then(() => (known = true));
    // After a reconnection (the first connection's is the announcement above). ioredis resubscribes after
    // emitting `ready`: the announcement waits a turn to go behind it.
    const onReady = () => {
      if (known) setImmediate(() => void announce());
    };
    subscriber.on('ready', onReady);
    const interval = setInterval(() => void count(), PEER_CHECK_MS);
    interval.unref();
    return {
      ready,
      get known() {
        return known;
      },
      stop: () => {
        stopped = true;
        clearInterval(interval);
        subscriber.off('ready', onReady);
        this.onAloneChange = undefined;
      },
    };
  }

  /** After this, nothing is sent any more (the server is closing); what waits for the other nodes goes first. */
  detach(): void {
    this.flush();
    this.io = undefined;
  }

  attach(io: AppServer): void {
    this.io = io;
    for (const h of this.nodeHandlers) io.on(h.event, h.fn as never);
  }

  /**
   * Revocations close the sessions' sockets of `namespace` as well, on every node (RT-5, AUTH-7): its
   * sockets join the same `session:` and `user:` rooms.
   */
  addNamespace(namespace: Namespace): void {
    this.namespaces.push(namespace);
  }

  /** The default namespace and the others added, while attached. */
  private everyNamespace(io: AppServer): Namespace[] {
    return [io.sockets as unknown as Namespace, ...this.namespaces];
  }

  /** Listens for an event sent by another node (`toOtherNodes`). */
  onNodeEvent<E extends keyof InterServerEvents>(event: E, fn: InterServerEvents[E]): void {
    this.nodeHandlers.push({ event, fn });
    this.io?.on(event, fn as never);
  }

  /** Sends an event to every other node (not this one). */
  toOtherNodes<E extends Exclude<keyof InterServerEvents, 'node:hello'>>(event: E, ...args: Parameters<InterServerEvents[E]>): void {
    if (!this.othersListen()) return;
    this.flush();
    // (the cast: Socket.IO's types cannot narrow an event name that is generic here)
    const io = this.io;
    if (io) (io.serverSideEmit as (event: string, ...args: unknown[]) => boolean).call(io, event, ...args);
  }

  /** Called on every broadcast (metrics). */
  onBroadcast(fn: () => void): void {
    this.listeners.add(fn);
  }

  toUser<E extends keyof ServerToClientEvents>(userId: string, event: E, ...args: EventArgs<E>): void {
    this.emit(userRoom(userId), event, args);
  }

  /**
   * Sends each user their own payload of `event`: a stream relay flushes hundreds of users' deltas at once,
   * and they go to the other nodes together with the turn's other broadcasts.
   */
  toUsers<E extends keyof ServerToClientEvents>(event: E, items: readonly { userId: string; args: EventArgs<E> }[]): void {
    for (const { userId, args } of items) this.emit(userRoom(userId), event, args);
  }

  toSession<E extends keyof ServerToClientEvents>(sessionId: string, event: E, ...args: EventArgs<E>): void {
    this.emit(sessionRoom(sessionId), event, args);
  }

  /**
   * Closes the sockets of these sessions, in every namespace: on this node at once, and on the others through
   * the adapter (a no-op for them while Redis is away; they catch up from PostgreSQL when it returns). Resolves
   * once they were told to close (the operators' command line waits for it before it exits).
   */
  disconnectSessions(sessionIds: string[], reason: RevocationReason): Promise<void> {
    const io = this.io;
    if (!io || sessionIds.length === 0) return Promise.resolve();
    const rooms = sessionIds.map(sessionRoom);
    // Else the local part is done here; other nodes, if any, re-read PostgreSQL when Redis returns.
    const everywhere = this.othersListen();
    if (everywhere) this.flush();
    for (const namespace of this.everyNamespace(io)) (everywhere ? namespace : namespace.local).to(rooms).emit('session:revoked', { reason });
    // A socket of this node still handling an event is closed once that event is answered (at most a second later).
    return this.inAMoment(io, () => {
      const busy = this.disconnectSessionsHere(sessionIds, reason, { notify: false });
      if (everywhere && this.othersListen()) {
        for (const namespace of this.everyNamespace(io)) namespace.in(rooms).except(busy).disconnectSockets(true);
      }
    });
  }

  /**
   * Tells every socket of every node, in every namespace, that its session was revoked, then closes them all:
   * an operator's `sign-out --all`, once every session is revoked. Resolves once they were told to close.
   */
  disconnectEveryone(reason: RevocationReason): Promise<void> {
    const io = this.io;
    if (!io) return Promise.resolve();
    this.flush();
    for (const namespace of this.everyNamespace(io)) namespace.emit('session:revoked', { reason });
    return this.inAMoment(io, () => {
      for (const namespace of this.everyNamespace(io)) namespace.disconnectSockets(true);
    });
  }

  /**
   * Closes the user's sockets on every node, in every namespace, revoking nothing: the tabs reconnect with their
   * tokens (an operator's `disconnect`, for a misbehaving client).
   */
  disconnectUser(userId: string): void {
    const io = this.io;
    if (!io) return;
    this.flush();
    for (const namespace of this.everyNamespace(io)) namespace.in(userRoom(userId)).disconnectSockets(true);
  }

  /**
   * Runs `close` a moment later, unless the server closed meanwhile: the moment lets the ack of the event that
   * caused a revocation (session:revoke, user:delete) and the `session:revoked` event go out first.
   */
  private inAMoment(io: AppServer, close: () => void): Promise<void> {
    return new Promise((resolve) => {
      setTimeout(() => {
        if (this.io === io) close();
        resolve();
      }, 50).unref();
    });
  }

  /**
   * Closes this node's sockets of these sessions only, in every namespace: used when a revocation could not
   * cross the adapter (Redis was away) and this node learns of it from PostgreSQL.
   * Returns the ids of the sockets left open until the event they are handling is answered.
   */
  disconnectSessionsHere(sessionIds: string[], reason: RevocationReason, options: { notify?: boolean } = {}): string[] {
    const io = this.io;
    if (!io || sessionIds.length === 0) return [];
    const rooms = sessionIds.map(sessionRoom);
    const waiting: string[] = [];
    for (const namespace of this.everyNamespace(io)) {
      if (options.notify !== false) namespace.local.to(rooms).emit('session:revoked', { reason });
      for (const room of rooms) {
        for (const id of namespace.adapter.rooms.get(room) ?? []) {
          const socket = namespace.sockets.get(id);
          if (!socket) continue;
          if (isBusy(socket)) {
            waiting.push(id);
            void whenIdle(socket, 1_000).then(() => socket.disconnect(true));
          } else {
            socket.disconnect(true);
          }
        }
      }
    }
    return waiting;
  }

  private emit(room: string, event: keyof ServerToClientEvents, args: readonly unknown[]): void {
    const io = this.io;
    if (!io) return;
    for (const fn of this.listeners) fn();
    (io.local.to(room).emit as (event: string, ...args: unknown[]) => boolean)(event, ...args);
    if (!this.othersListen()) return;
    this.outbox.push({ room, event, args });
    this.scheduler.schedule();
  }

  private emitHere(items: readonly RoomPayload[]): void {
    const io = this.io;
    if (!io) return;
    for (const { room, event, args } of items) (io.local.to(room).emit as (event: string, ...args: unknown[]) => boolean)(event, ...args);
  }

  /** Sends the waiting broadcasts to the other nodes, in one message. */
  private flush(): void {
    if (this.outbox.length === 0) return;
    this.scheduler.flushing();
    const items = this.outbox;
    this.outbox = [];
    if (this.othersListen()) this.io?.serverSideEmit('rooms:emit', items);
  }
}
