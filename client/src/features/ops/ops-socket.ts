/**
 * The `/ops` socket (PROTOCOL §7): its own connection, opened only while an
 * admin looks at the ops page, with `auth` as a function so every (re)connect
 * sends the current access token.
 */
import { io, type Socket } from 'socket.io-client';
import type { Ack } from '$shared/errors';
import type { OpsAckData, OpsClientToServerEvents, OpsRequestEvent, OpsServerToClientEvents } from '$shared/events';
import { localError } from '../../lib/errors';
import { requestTimeoutMs } from '../../lib/socket';

export type OpsSocket = Socket<OpsServerToClientEvents, OpsClientToServerEvents>;
export type OpsPayload<E extends OpsRequestEvent> = Parameters<OpsClientToServerEvents[E]>[0];

interface LooseEmitter {
  emit(event: string, payload: unknown, ack: (err: Error | null, res: unknown) => void): void;
}

export function createOpsSocket(token: () => string | null): OpsSocket {
  return io('/ops', {
    path: '/socket.io',
    transports: ['websocket'],
    // A connection of its own, closed with the page, never shared with the app's socket.
    forceNew: true,
    autoConnect: false,
    reconnection: true,
    reconnectionDelay: 500,
    reconnectionDelayMax: 8_000,
    randomizationFactor: 0.5,
    timeout: 10_000,
    auth: (cb) => cb({ token: token() ?? '' }),
  });
}

function isAck(value: unknown): value is Ack<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { ok?: unknown }).ok === 'boolean';
}

/** As `request()` of the app socket: answers at once while disconnected, never hangs. */
export function opsRequest<E extends OpsRequestEvent>(socket: OpsSocket | null, event: E, payload: OpsPayload<E>, timeoutMs = requestTimeoutMs): Promise<Ack<OpsAckData[E]>> {
  if (!socket?.connected) {
    return Promise.resolve({ ok: false, error: localError('UNAVAILABLE', 'Not connected to the ops view. Try again in a moment.') });
  }
  return new Promise((resolve) => {
    (socket.timeout(timeoutMs) as unknown as LooseEmitter).emit(event, payload, (err, res) => {
      if (err) resolve({ ok: false, error: localError('UNAVAILABLE', 'The server did not answer in time.') });
      else if (isAck(res)) resolve(res as Ack<OpsAckData[E]>);
      else resolve({ ok: false, error: localError('INTERNAL', 'The server sent an answer this page does not understand.') });
    });
  });
}
