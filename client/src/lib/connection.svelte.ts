/**
 * The live connection of this tab: one socket per signed-in session, its
 * status for the indicator, push subscriptions that survive reconnects, and
 * the reconnect policy the socket.io manager does not cover (refused
 * handshakes, server-side disconnects).
 */
import type { Ack } from '$shared/errors';
import type { AckData, RequestEvent, RequestPayload, ServerToClientEvents } from '$shared/events';
import type { SessionReady } from '$shared/schemas/account';
import { createSocket, request, type AppSocket, type PushEvent } from './socket';
import type { Session, SignOutReason } from './session.svelte';
import type { RevocationReason } from '$shared/constants';

export type ConnectionStatus = 'idle' | 'connecting' | 'live' | 'reconnecting' | 'offline';

type AnyHandler = (data: never) => void;

export class Connection {
  #status = $state<ConnectionStatus>('idle');
  #browserOnline = $state(typeof navigator === 'undefined' ? true : navigator.onLine);
  #nodeId = $state<string | null>(null);

  #socket: AppSocket | null = null;
  #handlers = new Map<PushEvent, Set<AnyHandler>>();
  #readyListeners = new Set<(ready: SessionReady) => void>();
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #attempt = 0;
  /** handshakes refused for the token since the last good connect */
  #authFailures = 0;

  constructor(private readonly session: Session) {
    session.onToken((token) => void this.#tokenChanged(token));
    window.addEventListener('online', () => {
      this.#browserOnline = true;
      this.retryNow();
    });
    window.addEventListener('offline', () => {
      this.#browserOnline = false;
    });
  }

  /** live, reconnecting or offline, for the indicator. */
  get status(): ConnectionStatus {
    if (!this.#browserOnline && this.#status !== 'live') return 'offline';
    return this.#status;
  }
  get live(): boolean {
    return this.#status === 'live';
  }
  get nodeId(): string | null {
    return this.#nodeId;
  }

  /** Subscribes to a push for the life of this object, across sockets and reconnects. */
  on<E extends PushEvent>(event: E, handler: ServerToClientEvents[E]): () => void {
    let set = this.#handlers.get(event);
    if (!set) this.#handlers.set(event, (set = new Set()));
    set.add(handler as AnyHandler);
    (this.#socket as { on(e: string, h: unknown): void } | null)?.on(event, handler);
    return () => {
      set.delete(handler as AnyHandler);
      (this.#socket as { off(e: string, h: unknown): void } | null)?.off(event, handler);
    };
  }

  /** Called after every `session:ready`, the first and each reconnect. */
  onReady(listener: (ready: SessionReady) => void): () => void {
    this.#readyListeners.add(listener);
    return () => this.#readyListeners.delete(listener);
  }

  request<E extends RequestEvent>(event: E, payload: RequestPayload<E>, timeoutMs?: number): Promise<Ack<AckData[E]>> {
    return request(this.#socket, event, payload, timeoutMs);
  }

  /** Back online: try at once rather than at the end of the manager's backoff. */
  retryNow(): void {
    const socket = this.#socket;
    if (!socket || socket.connected) return;
    this.#attempt = 0;
    if (socket.active) socket.disconnect(); // ends the manager's backoff; connect() below starts afresh
    void this.#connectNow();
  }

  start(): void {
    if (this.#socket) return;
    const socket = createSocket(() => this.session.token);
    this.#socket = socket;
    for (const [event, set] of this.#handlers) {
      for (const handler of set) (socket as unknown as { on(e: string, h: unknown): void }).on(event, handler);
    }
    socket.on('session:ready', (ready) => {
      this.#attempt = 0;
      this.#authFailures = 0;
      this.#nodeId = ready.nodeId;
      this.#status = 'live';
      this.session.ready(ready);
      for (const listener of this.#readyListeners) listener(ready);
    });
    socket.on('disconnect', (reason) => {
      if (this.#socket !== socket) return;
      this.#status = 'reconnecting';
      // Transport failures are retried by the manager; a server-side disconnect
      // (shutdown, expiry) is not, so it is retried here.
      if (reason === 'io server disconnect') this.#scheduleReconnect();
    });
    socket.on('connect_error', (err) => {
      if (this.#socket !== socket) return;
      this.#status = 'reconnecting';
      if (socket.active) return; // the manager retries with backoff
      void this.#handshakeRefused(err.message);
    });
    socket.on('session:revoked', ({ reason }) => {
      if (this.#socket !== socket) return;
      this.session.end(signOutReasonOf(reason), { announce: false });
    });
    socket.on('auth:expired', () => {
      if (this.#socket !== socket) return;
      void this.session.refresh({ force: true });
    });
    this.#status = 'connecting';
    socket.connect();
  }

  /** Closes the socket (sign-out); subscriptions stay for the next one. */
  stop(): void {
    clearTimeout(this.#retryTimer);
    const socket = this.#socket;
    this.#socket = null;
    socket?.disconnect();
    socket?.removeAllListeners();
    this.#status = 'idle';
    this.#nodeId = null;
  }

  async #handshakeRefused(reason: string): Promise<void> {
    if (reason === 'TOKEN_REVOKED') {
      this.session.end('revoked', { announce: false });
      return;
    }
    if (reason === 'TOKEN_EXPIRED' || reason === 'UNAUTHENTICATED') {
      this.#authFailures += 1;
      if (this.#authFailures > 3) {
        this.session.end('expired', { announce: false });
        return;
      }
      const ok = await this.session.refresh({ force: true });
      if (!ok && this.session.status !== 'authenticated') return;
    }
    this.#scheduleReconnect(reason === 'TOKEN_EXPIRED' || reason === 'UNAUTHENTICATED' ? 0 : undefined);
  }

  #scheduleReconnect(delayMs?: number): void {
    clearTimeout(this.#retryTimer);
    const backoff = Math.min(15_000, 500 * 2 ** this.#attempt) * (0.5 + Math.random());
    this.#attempt = Math.min(this.#attempt + 1, 10);
    this.#retryTimer = setTimeout(() => this.#connectNow(), delayMs ?? backoff);
  }

  async #connectNow(): Promise<void> {
    const socket = this.#socket;
    if (!socket || socket.connected || socket.active) return;
    await this.session.ensureFreshToken();
    if (this.#socket !== socket || socket.connected || socket.active || this.session.status !== 'authenticated') return;
    socket.connect();
  }

  /** A new token: tell the live socket, or use it to reconnect. */
  async #tokenChanged(token: string): Promise<void> {
    const socket = this.#socket;
    if (!socket) return;
    if (!socket.connected) {
      if (!socket.active) this.#scheduleReconnect(0);
      return;
    }
    const res = await this.request('auth:refresh', { token });
    if (!res.ok && res.error.code !== 'UNAVAILABLE' && this.#socket === socket) {
      // The token belongs to another session (a login in another tab): start over with it.
      socket.disconnect();
      this.#status = 'reconnecting';
      this.#scheduleReconnect(0);
    }
  }
}

/** What the sign-in screen tells a user whose session the server revoked (RT-5). */
function signOutReasonOf(reason: RevocationReason): SignOutReason {
  if (reason === 'password_changed' || reason === 'password_reset') return 'password';
  if (reason === 'mfa_changed') return 'mfa';
  return 'revoked';
}
