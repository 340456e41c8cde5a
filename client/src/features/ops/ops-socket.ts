/**
 * The `/ops` socket (PROTOCOL §7): its own connection, opened only while an
 * admin looks at the ops page, with `auth` as a function so every (re)connect
 * sends the current access token.
 */
import { io, type Socket } from 'socket.io-client';
import type { Ack } from '$shared/errors';
import type { OpsAckData, OpsClientToServerEvents, OpsRequestEvent, OpsServerToClientEvents } from '$shared/events';
import { emitWithAck, requestTimeoutMs, socketOptions } from '../../lib/socket';

export type OpsSocket = Socket<OpsServerToClientEvents, OpsClientToServerEvents>;
export type OpsPayload<E extends OpsRequestEvent> = Parameters<OpsClientToServerEvents[E]>[0];

export function createOpsSocket(token: () => string | null): OpsSocket {
  // A connection of its own, closed with the page, never shared with the app's socket.
  return io('/ops', socketOptions(token));
}

/** As `request()` of the app socket: answers at once while disconnected, never hangs. */
export function opsRequest<E extends OpsRequestEvent>(socket: OpsSocket | null, event: E, payload: OpsPayload<E>, timeoutMs = requestTimeoutMs): Promise<Ack<OpsAckData[E]>> {
  return emitWithAck<OpsAckData[E]>(socket as Socket | null, event, payload, timeoutMs, 'Not connected to the ops view. Try again in a moment.');
}
