/**
 * The Socket.IO gateway on the same http.Server as Express: WebSocket only,
 * Origin allow-list at the upgrade, handshake auth (RT-1, RT-8, AUTH-12),
 * `session:ready` (RT-2), rooms (RT-7), token lifetime on live sockets (RT-4,
 * RT-5), and the Redis adapter so that broadcasts reach every node.
 */
import type http from 'node:http';
import { Server } from 'socket.io';
import type { Deps } from '../deps.js';
import { limits } from '../../shared/limits.js';
import { isAllowedOrigin } from '../http/security.js';
import { clearExpiry, handshakeAuth, HandshakeFailureLog, scheduleExpiry, takeAdmitted } from './handshake-auth.js';
import { handshakeBatching } from './socket-limit.js';
import { toUserView } from '../features/auth/auth.service.js';
import { createRedisAdapter } from './adapter.js';
import { batched } from '../batch.js';
import type { RevokedEvent } from '../features/auth/revocation.js';
import type { ReadyUserRow } from '../features/auth/users.repository.js';
import { createDispatcher, type HandlerMap, type HandlerRuntime } from './define-handler.js';
import type { GatewayHooks } from '../hooks.js';
import { sessionRoom, userRoom } from './rooms.js';
import { whenIdle } from './in-flight.js';
import { startCatchUp } from './catch-up.js';
import { ErrorCode } from '../errors.js';
import type { AppServer, AppSocket } from './types.js';

export interface Gateway {
  io: AppServer;
  /**
   * A handshake's check of the token, the user's row and the socket limit, for any namespace (the row read
   * is shared with the other handshakes of its batch, whatever their namespace).
   */
  handshake(options: { role?: 'admin'; namespace?: string }): ReturnType<typeof handshakeAuth>;
  /**
   * The start of a drain (SIGTERM): handshakes in every namespace are refused with `UNAVAILABLE` from now on,
   * and each app socket of this node is closed once the events it is handling are answered (at most
   * `inFlightMs` later), so that its client reconnects to another node. Resolves when they are closed.
   */
  drain(inFlightMs: number): Promise<void>;
  /** Stops accepting and closes every socket of this node. */
  close(): Promise<void>;
}

export function createGateway(options: {
  server: http.Server;
  deps: Deps;
  handlers: HandlerMap;
  hooks: GatewayHooks;
  runtime: Omit<HandlerRuntime, 'hooks'>;
}): Gateway {
  const { server, deps, hooks } = options;
  const { config, logger, auth, revocation, broadcaster } = deps;
  /**
   * The rows `session:ready` needs, read at the handshake (the role and the account's existence, AUTH-12):
   * one query for the handshakes of a batch. It starts beside the handshake's Redis call, not after it, so it
   * is batched the same way (`handshakeBatching`).
   */
  const userById = batched((ids: string[]) => deps.users.readyRows(ids), handshakeBatching);
  const failures = new HandshakeFailureLog(logger);
  let draining = false;
  const handshake = (options: { role?: 'admin'; namespace?: string }): ReturnType<typeof handshakeAuth> => {
    const check = handshakeAuth({ auth, loadUser: userById, sockets: deps.sockets, failures, onFailure: hooks.onHandshakeFailure, ...options });
    return async (socket, next) => {
      // No socket before the other nodes heard of this one: until then they may not send it their broadcasts.
      if (!peers.known) await peers.ready;
      if (!draining) return check(socket, next);
      // A draining node takes no new sockets: the client retries, and the load balancer sends it elsewhere.
      hooks.onHandshakeFailure(ErrorCode.UNAVAILABLE);
      next(Object.assign(new Error(ErrorCode.UNAVAILABLE), { data: { code: ErrorCode.UNAVAILABLE } }));
    };
  };

  const io: AppServer = new Server(server, {
    path: '/socket.io',
    transports: ['websocket'],
    serveClient: false,
    maxHttpBufferSize: limits.socketFrameBytes,
    pingInterval: 25_000,
    pingTimeout: 20_000,
    connectTimeout: 10_000,
    perMessageDeflate: false,
    httpCompression: false,
    allowRequest: (req, callback) => {
      // Scripts and load generators send no Origin; browsers must come from an allowed or our own origin.
      const origin = req.headers.origin;
      const ok = origin === undefined || isAllowedOrigin(origin, config.corsOrigins, req.headers.host);
      if (!ok) {
        hooks.onHandshakeFailure('FORBIDDEN');
        failures.record({ reason: 'FORBIDDEN', origin: req.headers.origin });
      }
      callback(ok ? null : 'FORBIDDEN', ok);
    },
  });

  // While Redis is away, the broadcaster sends to this node's sockets only.
  const redisAdapter = createRedisAdapter(config, config.nodeId);
  io.adapter(redisAdapter.adapter);
  broadcaster.attach(io);
  const peers = broadcaster.watchPeers(redisAdapter.subscriber, (alone) =>
    logger.info({ event: 'peers', alone }, alone ? 'no other node listens: broadcasts stay on this node' : 'other nodes listen: broadcasts go to them'),
  );
  const stopCatchUp = startCatchUp({ io, sub: redisAdapter.subscriber, redisWatch: deps.redisWatch, broadcaster, logger });

  // Memory: the HTTP request of the upgrade is not needed after the handshake.
  io.engine.on('connection', (rawSocket: { request: unknown }) => {
    rawSocket.request = null;
  });

  io.use(handshake({}));

  const dispatch = createDispatcher(options.handlers, { ...options.runtime, hooks });

  io.on('connection', (socket) => {
    const { userId, sessionId } = socket.data;
    const admitted = takeAdmitted(socket);
    hooks.onConnect(userId);
    dispatch(socket);
    scheduleExpiry(socket);
    socket.on('disconnect', (reason) => {
      clearExpiry(socket);
      admitted?.release();
      hooks.onDisconnect(reason, userId);
    });
    // Joined at once (the adapter keeps rooms in memory): a revocation from now on reaches this socket.
    void socket.join([userRoom(userId), sessionRoom(sessionId)]);
    if (admitted) sendReady(socket, admitted.user);
  });

  function sendReady(socket: AppSocket, user: ReadyUserRow): void {
    if (!socket.connected) return;
    socket.emit('session:ready', {
      user: toUserView(user),
      sessionId: socket.data.sessionId,
      tokenExpiresAt: new Date(socket.data.exp * 1000).toISOString(),
      taskSeq: Number(user.taskSeq),
      nodeId: config.nodeId,
      serverTime: new Date().toISOString(),
      dueReminders: user.dueReminders,
    });
  }

  // RT-5 / AUTH-7: a revocation on this node closes the session's sockets on every node.
  const onRevoked = ({ sessionIds, reason }: RevokedEvent) => void broadcaster.disconnectSessions(sessionIds, reason);
  revocation.events.on('revoked', onRevoked);

  // Revocations made while this node distrusted Redis (a failed write, an outage) may not have crossed the
  // adapter: once it trusts Redis again, it re-reads them from PostgreSQL and closes its own sockets of them.
  const onRecovered = ({ since }: { since: Date }) => {
    revocation
      .revokedSince(since)
      .then((revoked) => {
        for (const { id, reason } of revoked) broadcaster.disconnectSessionsHere([id], reason);
      })
      .catch((err: unknown) => logger.warn({ err }, 'could not re-read revocations'));
  };
  revocation.events.on('recovered', onRecovered);

  return {
    io,
    handshake,
    async drain(inFlightMs) {
      draining = true;
      // A server-side disconnect: clients reconnect (PROTOCOL §8), the events in flight answered first.
      await Promise.all(
        [...io.sockets.sockets.values()].map(async (socket) => {
          await whenIdle(socket, inFlightMs);
          socket.disconnect(true);
        }),
      );
    },
    async close() {
      stopCatchUp();
      peers.stop();
      broadcaster.detach();
      revocation.events.off('revoked', onRevoked);
      revocation.events.off('recovered', onRecovered);
      io.local.disconnectSockets(true);
      await new Promise<void>((resolve) => {
        io.close(() => resolve());
        // io.close also closes the http.Server; Express's close() is then a no-op.
      });
      await redisAdapter.close();
    },
  };
}
