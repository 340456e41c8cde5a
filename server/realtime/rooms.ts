/**
 * RT-7: every socket joins `user:<id>` and `session:<id>`, in every namespace.
 * Broadcasts go through the Redis adapter to every node, the sender's own
 * socket included; revocations close a session's sockets in every namespace.
 */
import type { Namespace } from 'socket.io';
import type { ServerToClientEvents } from '../../shared/events.js';
import type { RevocationReason } from '../../shared/constants.js';
import type { AppServer, InterServerEvents, UserPayload } from './types.js';

export const userRoom = (userId: string) => `user:${userId}`;
export const sessionRoom = (sessionId: string) => `session:${sessionId}`;

type EventArgs<E extends keyof ServerToClientEvents> = Parameters<ServerToClientEvents[E]>;

/** Emits to rooms once the Socket.IO server exists; features depend on this, not on Socket.IO. */
export class Broadcaster {
  private io: AppServer | undefined;
  private readonly listeners = new Set<() => void>();
  /** namespaces besides the default one whose sockets revocations close too (`/ops`) */
  private readonly namespaces: Namespace[] = [];

  private readonly nodeHandlers: { event: keyof InterServerEvents; fn: (...args: any[]) => void }[] = [];

  /**
   * `reachable` tells whether Redis, and through it the other nodes, can be
   * reached: while it cannot, broadcasts go to this node's sockets only
   * (instead of piling up in the adapter's queue); the tabs on other nodes
   * catch up from PostgreSQL (SYNC-1).
   */
  constructor(private readonly reachable: () => boolean = () => true) {
    this.onNodeEvent('users:emit', (event, items) => this.emitHere(event, items));
  }

  /** After this, nothing is sent any more (the server is closing). */
  detach(): void {
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
  toOtherNodes<E extends keyof InterServerEvents>(event: E, ...args: Parameters<InterServerEvents[E]>): void {
    // While Redis is away, other nodes cannot be told.
    if (this.reachable()) this.io?.serverSideEmit(event, ...args);
  }

  /** Called on every broadcast (metrics). */
  onBroadcast(fn: () => void): void {
    this.listeners.add(fn);
  }

  toUser<E extends keyof ServerToClientEvents>(userId: string, event: E, ...args: EventArgs<E>): void {
    this.emit(userRoom(userId), event, ...args);
  }

  /**
   * Sends each user their own payload of `event`, on every node: delivered to
   * this node's sockets directly, and to the other nodes in one adapter
   * message for the lot. A stream relay flushes hundreds of users' deltas at
   * once; one adapter publish each (which every node, this one included, then
   * receives and decodes) cost more than their local delivery. Redis keeps
   * the order of one publisher's messages across channels, so these stay in
   * order with the user's other broadcasts.
   */
  toUsers<E extends keyof ServerToClientEvents>(event: E, items: readonly { userId: string; args: EventArgs<E> }[]): void {
    const io = this.io;
    if (!io || items.length === 0) return;
    for (const fn of this.listeners) for (let i = 0; i < items.length; i++) fn();
    this.emitHere(event, items as readonly UserPayload[]);
    this.toOtherNodes('users:emit', event, items as unknown as UserPayload[]);
  }

  private emitHere(event: keyof ServerToClientEvents, items: readonly UserPayload[]): void {
    const io = this.io;
    if (!io) return;
    for (const { userId, args } of items) (io.local.to(userRoom(userId)).emit as (event: string, ...args: unknown[]) => boolean)(event, ...args);
  }

  toSession<E extends keyof ServerToClientEvents>(sessionId: string, event: E, ...args: EventArgs<E>): void {
    this.emit(sessionRoom(sessionId), event, ...args);
  }

  /**
   * Closes the sockets of these sessions, in every namespace: on this node at once, and on the others through
   * the adapter (a no-op for them while Redis is away; they catch up from PostgreSQL when it returns).
   */
  disconnectSessions(sessionIds: string[], reason: RevocationReason): void {
    const io = this.io;
    if (!io || sessionIds.length === 0) return;
    const rooms = sessionIds.map(sessionRoom);
    // While Redis is away, the local part is done here; other nodes re-read PostgreSQL when it returns.
    const everywhere = this.reachable();
    for (const namespace of this.everyNamespace(io)) (everywhere ? namespace : namespace.local).to(rooms).emit('session:revoked', { reason });
    // A moment's delay lets the ack of the event that caused this (session:revoke, user:delete) go out first.
    setTimeout(() => {
      if (this.io !== io) return;
      this.disconnectSessionsHere(sessionIds, reason, { notify: false });
      if (everywhere && this.reachable()) for (const namespace of this.everyNamespace(io)) namespace.in(rooms).disconnectSockets(true);
    }, 50).unref();
  }

  /**
   * Closes this node's sockets of these sessions only, in every namespace: used when a revocation could not
   * cross the adapter (Redis was away) and this node learns of it from PostgreSQL.
   */
  disconnectSessionsHere(sessionIds: string[], reason: RevocationReason, options: { notify?: boolean } = {}): void {
    const io = this.io;
    if (!io || sessionIds.length === 0) return;
    const rooms = sessionIds.map(sessionRoom);
    for (const namespace of this.everyNamespace(io)) {
      if (options.notify !== false) namespace.local.to(rooms).emit('session:revoked', { reason });
      namespace.local.in(rooms).disconnectSockets(true);
    }
  }

  private emit<E extends keyof ServerToClientEvents>(room: string, event: E, ...args: EventArgs<E>): void {
    const io = this.io;
    if (!io) return;
    for (const fn of this.listeners) fn();
    (this.reachable() ? io : io.local).to(room).emit(event, ...args);
  }
}
