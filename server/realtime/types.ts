import type { Server, Socket } from 'socket.io';
import type { ClientToServerEvents, ServerToClientEvents } from '../../shared/events.js';
import type { Role } from '../../shared/schemas/auth.js';

/** Events between nodes (through the Redis adapter). */
export interface InterServerEvents {
  /** a `chat:cancel` that reached a node other than the one running the generation */
  'chat:cancel': (messageId: string) => void;
  /** the broadcasts of one loop turn of the sending node, for each node to deliver to its own sockets (`Broadcaster`) */
  'rooms:emit': (items: RoomPayload[]) => void;
  /**
   * a node that starts, or whose subscription is back, announces itself: each other node then sends it its
   * broadcasts again if it had stopped, being alone (`Broadcaster.watchPeers`), and only then answers
   */
  'node:hello': (ack: (heard: true) => void) => void;
  /** the sending node's Redis link is back: what it sent meanwhile reached its own sockets only (`catch-up.ts`) */
  'sockets:catch-up': () => void;
}

/** One broadcast: an event and its arguments for the sockets in a room. */
export interface RoomPayload {
  room: string;
  event: keyof ServerToClientEvents;
  args: readonly unknown[];
}

/** Kept small on purpose: one of these lives per connected socket. */
export interface SocketData {
  userId: string;
  sessionId: string;
  role: Role;
  /** access token expiry, epoch seconds */
  exp: number;
}

export type AppServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
export type AppSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
