/**
 * The Socket.IO gateway on the same http.Server as Express: WebSocket only,
 * Origin allow-list at the upgrade, handshake auth (RT-1), `session:ready`
 * (RT-2), rooms (RT-7), token lifetime on live sockets (RT-4, RT-5), and the
 * Redis adapter so that broadcasts reach every node.
 */
import type http from 'node:http';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import type { Deps } from '../deps.js';
import { limits } from '../../shared/limits.js';
import { AppError, ErrorCode } from '../errors.js';
import { securityLog } from '../logger.js';
import { isAllowedOrigin } from '../http/security.js';
import { clearExpiry, handshakeAuth, scheduleExpiry } from './handshake-auth.js';
import { toUserView } from '../features/auth/auth.service.js';
import { autoCork, redisOptions } from '../redis.js';
import { batched } from '../batch.js';
import { createDispatcher, defineHandler, type EventHooks, type Handler, type HandlerRuntime } from './define-handler.js';
import { sessionRoom, userRoom } from './rooms.js';
import type { AppServer } from './types.js';
import { requestSchemas } from '../../shared/events.js';

/** The user row `session:ready` needs, with the entity's property names. */
interface UserRow {
  id: string;
  email: string;
  fullName: string;
  timezone: string;
  role: 'user' | 'admin';
  createdAt: string;
  taskSeq: number;
}

export interface GatewayHooks extends EventHooks {
  onConnect(userId: string): void;
  onDisconnect(reason: string, userId: string): void;
  onHandshakeFailure(reason: string): void;
}

export interface Gateway {
  io: AppServer;
  /** Stops accepting and closes every socket of this node. */
  close(): Promise<void>;
}

export function createGateway(options: {
  server: http.Server;
  deps: Deps;
  handlers: readonly Handler[];
  hooks: GatewayHooks;
  runtime: Omit<HandlerRuntime, 'hooks'>;
}): Gateway {
  const { server, deps, hooks } = options;
  const { config, logger, auth, revocation, broadcaster } = deps;
  const { sql } = deps;
  /**
   * The rows `session:ready` needs: one query for every socket connected in the same loop turn. It needs no
   * window of its own: the handshakes of one revocation lookup (which has one) connect in the same turn.
   */
  const userById = batched(async (ids: string[]) => {
    const rows = await sql.query<UserRow>(
      'select id, email, full_name as "fullName", timezone, role, created_at as "createdAt", task_seq as "taskSeq" from users where id = any($1::uuid[])',
      [ids],
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id));
  });

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
        securityLog(logger, 'socket_auth_failed', { reason: 'FORBIDDEN', origin: req.headers.origin });
      }
      callback(ok ? null : 'FORBIDDEN', ok);
    },
  });

  // Each broadcast is a PUBLISH: those of one loop turn leave in one write.
  const pub = autoCork(new Redis(config.redisUrl, redisOptions(config, { connectionName: `sam:${config.nodeId}:pub`, lazyConnect: false })));
  const sub = pub.duplicate({ connectionName: `sam:${config.nodeId}:sub` });
  pub.on('error', () => undefined);
  sub.on('error', () => undefined);
  // The adapter does not await its publishes; while Redis is away they fail, and that must not
  // become an unhandled rejection (the local delivery has happened; PostgreSQL covers the rest).
  const publish = pub.publish.bind(pub);
  pub.publish = ((...args: Parameters<typeof publish>) => {
    const sent = publish(...args);
    sent.catch(() => undefined);
    return sent;
  }) as typeof pub.publish;
  io.adapter(createAdapter(pub, sub, { key: `${config.redisPrefix}socket.io`, requestsTimeout: 3_000 }));
  broadcaster.attach(io);

  // Memory: the HTTP request of the upgrade is not needed after the handshake.
  io.engine.on('connection', (rawSocket: { request: unknown }) => {
    rawSocket.request = null;
  });

  io.use(handshakeAuth({ auth, logger, onFailure: hooks.onHandshakeFailure }));

  const authRefresh = defineHandler('auth:refresh', requestSchemas['auth:refresh'], async (ctx, { token }) => {
    const claims = await auth.authenticate(token);
    if (claims.sid !== ctx.sessionId || claims.sub !== ctx.userId) {
      throw new AppError(ErrorCode.FORBIDDEN, 'The token belongs to another session');
    }
    if (claims.exp > ctx.socket.data.exp) {
      ctx.socket.data.exp = claims.exp;
      scheduleExpiry(ctx.socket);
    }
    return { expiresAt: new Date(ctx.socket.data.exp * 1000).toISOString() };
  });
  const handlers: readonly Handler[] = [authRefresh as Handler, ...options.handlers];
  const dispatch = createDispatcher(handlers, { ...options.runtime, hooks });

  io.on('connection', async (socket) => {
    const { userId, sessionId } = socket.data;
    hooks.onConnect(userId);
    dispatch(socket);
    scheduleExpiry(socket);
    socket.on('disconnect', (reason) => {
      clearExpiry(socket);
      hooks.onDisconnect(reason, userId);
    });
    await socket.join([userRoom(userId), sessionRoom(sessionId)]);
    try {
      const user = await userById(userId);
      if (!user) {
        socket.emit('session:revoked', { reason: 'account_deleted' });
        socket.disconnect(true);
        return;
      }
      if (!socket.connected) return;
      socket.emit('session:ready', {
        user: toUserView(user),
        sessionId,
        tokenExpiresAt: new Date(socket.data.exp * 1000).toISOString(),
        taskSeq: Number(user.taskSeq),
        nodeId: config.nodeId,
        serverTime: new Date().toISOString(),
      });
    } catch (err) {
      logger.error({ err, userId }, 'session:ready failed');
      socket.disconnect(true);
    }
  });

  // RT-5 / AUTH-7: a revocation on this node closes the session's sockets on every node.
  const onRevoked = ({ sessionIds, reason }: { sessionIds: string[]; reason: string }) =>
    broadcaster.disconnectSessions(sessionIds, reason);
  revocation.events.on('revoked', onRevoked);

  // Revocations made while Redis was away never crossed the adapter: catch up from PostgreSQL.
  let downSince: Date | undefined;
  const offRedis = deps.redisWatch.onChange((up) => {
    if (!up) {
      downSince ??= new Date(Date.now() - 5_000);
      return;
    }
    const since = downSince;
    downSince = undefined;
    if (!since) return;
    revocation
      .revokedSince(since)
      .then((ids) => broadcaster.disconnectSessionsHere(ids, 'revoked'))
      .catch((err: unknown) => logger.warn({ err }, 'could not re-read revocations'));
  });

  return {
    io,
    async close() {
      broadcaster.detach();
      revocation.events.off('revoked', onRevoked);
      offRedis();
      io.local.disconnectSockets(true);
      await new Promise<void>((resolve) => {
        io.close(() => resolve());
        // io.close also closes the http.Server; Express's close() is then a no-op.
      });
      // QUIT queues behind the adapter's pending unsubscribes, so none of them is left rejected.
      await Promise.allSettled([pub.quit(), sub.quit()]);
    },
  };
}
