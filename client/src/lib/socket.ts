/**
 * The one typed socket (PROTOCOL §5): WebSocket only, `auth` as a function so
 * every (re)connect sends the current access token, and `request()` that
 * resolves with the ack or a local error, never hangs.
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import type { Ack } from '$shared/errors';
import type { AckData, ClientToServerEvents, RequestEvent, RequestPayload, ServerToClientEvents } from '$shared/events';
import { localError } from './errors';

export type AppSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
export type PushEvent = keyof ServerToClientEvents;
export type PushData<E extends PushEvent> = Parameters<ServerToClientEvents[E]>[0];
export type Requester = <E extends RequestEvent>(event: E, payload: RequestPayload<E>, timeoutMs?: number) => Promise<Ack<AckData[E]>>;

export const requestTimeoutMs = 10_000;

/** socket.io's typed emit cannot follow a generic event name; this is the shape it has at run time. */
interface LooseEmitter {
  emit(event: string, payload: unknown, ack: (err: Error | null, res: unknown) => void): void;
}

/** Connection options shared by every socket of the page: its own connection, WebSocket only, the current token on each (re)connect. */
export function socketOptions(token: () => string | null): Partial<ManagerOptions & SocketOptions> {
  return {
    path: '/socket.io',
    transports: ['websocket'],
    // One socket per sign-in (or per ops view); socket.io would otherwise hand back the previous one, with its options.
    forceNew: true,
    autoConnect: false,
    reconnection: true,
    reconnectionDelay: 500,
    reconnectionDelayMax: 8_000,
    randomizationFactor: 0.5,
    timeout: 10_000,
    auth: (cb) => cb({ token: token() ?? '' }),
  };
}

export function createSocket(token: () => string | null): AppSocket {
  return io(socketOptions(token));
}

function isAck(value: unknown): value is Ack<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { ok?: unknown }).ok === 'boolean';
}

/**
 * Emits `event` with an ack. While disconnected it answers at once rather than
 * letting socket.io buffer a request that might run twice or never.
 */
export function request<E extends RequestEvent>(
  socket: AppSocket | null,
  event: E,
  payload: RequestPayload<E>,
  timeoutMs = requestTimeoutMs,
): Promise<Ack<AckData[E]>> {
  return emitWithAck<AckData[E]>(socket, event, payload, timeoutMs, 'Not connected to the server. Try again in a moment.');
}

/** The untyped core of `request()`, shared with the ops socket. */
export function emitWithAck<T>(socket: Socket | null, event: string, payload: unknown, timeoutMs: number, notConnected: string): Promise<Ack<T>> {
  if (!socket?.connected) return Promise.resolve({ ok: false, error: localError('UNAVAILABLE', notConnected) });
  return new Promise((resolve) => {
    (socket.timeout(timeoutMs) as unknown as LooseEmitter).emit(event, payload, (err, res) => {
      if (err) resolve({ ok: false, error: localError('UNAVAILABLE', 'The server did not answer in time.') });
      else if (isAck(res)) resolve(res as Ack<T>);
      else resolve({ ok: false, error: localError('INTERNAL', 'The server sent an answer this page does not understand.') });
    });
  });
}
