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
import { redisOptions } from '../redis.js';
import { createDispatcher, defineHandler, type EventHooks, type Handler, type HandlerRuntime } from './define-handler.js';
import { sessionRoom, userRoom } from './rooms.js';
import type { AppServer, AppSocket } from './types.js';
import { requestSchemas } from '../../shared/events.js';

interface UserRow {
  id: string;
  email: string;
  full_name: string;
  timezone: string;
  role: 'user' | 'admin';
  created_at: Date;
  task_seq: number;
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

/** True when a browser Origin may open a socket: an allowed origin or the server's own host. */
export function originAllowed(origin: string | undefined, host: string | undefined, allowed: readonly string[]): boolean {
  if (origin === undefined) return true; // scripts and load generators send none
  if (allowed.includes(origin)) return true;
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
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
      const ok = originAllowed(req.headers.origin, req.headers.host, config.corsOrigins);
      if (!ok) {
        hooks.onHandshakeFailure('FORBIDDEN');
        securityLog(logger, 'socket_auth_failed', { reason: 'FORBIDDEN', origin: req.headers.origin });
      }
      callback(ok ? null : 'FORBIDDEN', ok);
    },
  });

  const pub = new Redis(
    config.redisUrl,
    redisOptions(config, { connectionName: `sam:${config.nodeId}:pub`, lazyConnect: false }),
  );
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

  io.use(async (socket, next) => {
    const token: unknown = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
    try {
      const claims = await auth.authenticate(token);
      socket.data = { userId: claims.sub, sessionId: claims.sid, role: claims.role, exp: claims.exp };
      next();
    } catch (err) {
      const code = err instanceof AppError ? err.code : ErrorCode.UNAUTHENTICATED;
      const reason = code === ErrorCode.TOKEN_EXPIRED || code === ErrorCode.TOKEN_REVOKED || code === ErrorCode.UNAVAILABLE ? code : ErrorCode.UNAUTHENTICATED;
      hooks.onHandshakeFailure(reason);
      securityLog(logger, 'socket_auth_failed', { reason });
      next(Object.assign(new Error(reason), { data: { code: reason } }));
    }
  });

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

  const expiryTimers = new WeakMap<AppSocket, NodeJS.Timeout>();
  function scheduleExpiry(socket: AppSocket): void {
    clearTimeout(expiryTimers.get(socket));
    const ms = socket.data.exp * 1000 - Date.now();
    const timer = setTimeout(() => {
      if (!socket.connected) return;
      socket.emit('auth:expired', { expiredAt: new Date(socket.data.exp * 1000).toISOString() });
      socket.disconnect(true);
    }, Math.max(0, ms));
    timer.unref();
    expiryTimers.set(socket, timer);
  }

  io.on('connection', async (socket) => {
    const { userId, sessionId } = socket.data;
    hooks.onConnect(userId);
    dispatch(socket);
    scheduleExpiry(socket);
    socket.on('disconnect', (reason) => {
      clearTimeout(expiryTimers.get(socket));
      hooks.onDisconnect(reason, userId);
    });
    await socket.join([userRoom(userId), sessionRoom(sessionId)]);
    try {
      // One plain query on the connect path (no entity hydration).
      const [user] = await deps.orm.em.getConnection().execute<UserRow[]>(
        'select id, email, full_name, timezone, role, created_at, task_seq from users where id = ?',
        [userId],
      );
      if (!user) {
        socket.emit('session:revoked', { reason: 'account_deleted' });
        socket.disconnect(true);
        return;
      }
      if (!socket.connected) return;
      socket.emit('session:ready', {
        user: {
          id: user.id,
          email: user.email,
          fullName: user.full_name,
          timezone: user.timezone,
          role: user.role,
          createdAt: new Date(user.created_at).toISOString(),
        },
        sessionId,
        tokenExpiresAt: new Date(socket.data.exp * 1000).toISOString(),
        taskSeq: Number(user.task_seq),
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
      .then((ids) => {
        if (ids.length === 0) return;
        const rooms = ids.map(sessionRoom);
        io.local.to(rooms).emit('session:revoked', { reason: 'revoked' });
        io.local.in(rooms).disconnectSockets(true);
      })
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
