/** createApp(deps): Express and (later) Socket.IO on one http.Server. Never listens. */
import http from 'node:http';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import express from 'express';
import cookieParser from 'cookie-parser';
import type { Deps } from './deps.js';
import { limits } from '../shared/limits.js';
import { authBasePath } from '../shared/schemas/auth.js';
import { corsPolicy, originGuard, securityHeaders } from './http/security.js';
import { errorHandler, notFound } from './http/errors.js';
import { appError, ErrorCode } from './errors.js';
import { restRateLimit } from './http/rate-limit.js';
import { authRoutes } from './features/auth/auth.routes.js';
import { healthCheck, healthRoute } from './features/ops/health.js';
import { createGateway, type Gateway } from './realtime/gateway.js';
import type { GatewayHooks } from './hooks.js';
import type { HandlerMap } from './realtime/define-handler.js';
import { authHandlers } from './features/auth/auth.handlers.js';
import { taskHandlers } from './features/tasks/tasks.handlers.js';
import { accountHandlers } from './features/account/account.handlers.js';
import { chatHandlers } from './features/chat/chat.handlers.js';
import { searchHandlers } from './features/search/search.handlers.js';
import { startStreamSweeper } from './features/chat/chat.service.js';
import { startPurgeJob } from './jobs/purge.js';
import { startReminderJob } from './jobs/reminders.js';
import { reminderHandlers } from './features/reminders/reminders.handlers.js';
import { pushHandlers } from './features/reminders/push.handlers.js';
import { attachOps } from './features/ops/ops-namespace.js';
import { securityHandlers } from './features/security/security.handlers.js';
import { securityRoutes } from './features/security/security.routes.js';

/**
 * How long a drain waits for a socket's events in flight before it closes the socket anyway. An event takes
 * milliseconds; one stuck on a database connection would otherwise hold its client on a leaving node, and a
 * write closed before its ack is retried by id or caught up by `task:sync`.
 */
const IN_FLIGHT_MAX_MS = 2_000;

export interface App {
  app: express.Express;
  server: http.Server;
  gateway: Gateway;
  /**
   * SIGTERM's first step: stops listening, answers new requests `503 UNAVAILABLE` and refuses handshakes, closes
   * this node's sockets once their events in flight are answered (clients reconnect to another node), and waits
   * for the answers it is generating until `deadline` (epoch ms). `close()` then ends what still runs.
   */
  drain(deadline: number): Promise<void>;
  /** Stops accepting, lets in-flight requests finish, then resolves. */
  close(): Promise<void>;
}

/** Where the built client lives: dist/client beside the compiled server, or from the repository root. */
function clientDir(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, '../client'), path.resolve(here, '../dist/client'), path.resolve(process.cwd(), 'dist/client')];
  return candidates.find((dir) => fs.existsSync(path.join(dir, 'index.html')));
}

export function createApp(deps: Deps, options: { hooks?: GatewayHooks; jobs?: boolean; opsIntervalMs?: number } = {}): App {
  const { config, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy ?? false);
  app.set('etag', false);

  app.use(securityHeaders(config));
  let draining = false;
  app.use((_req, res, next) => {
    if (!draining) return next();
    // Another node answers the retry; this connection is not kept for it.
    res.setHeader('Connection', 'close');
    next(appError(ErrorCode.UNAVAILABLE, { message: 'This server is shutting down', retryAfterMs: 1_000 }));
  });
  app.use(deps.metrics.httpMiddleware);
  app.get('/health', healthRoute(healthCheck(deps)));
  app.get('/metrics', deps.metrics.route(config.metricsToken));

  app.use('/api', corsPolicy(config));
  app.use(
    '/api',
    restRateLimit({
      redis: deps.redis,
      redisWatch: deps.redisWatch,
      perMinute: config.rateLimitPerMinute,
      logger,
      onLimited: deps.metrics.countRestRateLimited,
    }),
  );
  app.use('/api', originGuard(config));
  app.use('/api', express.json({ limit: limits.httpBodyBytes, strict: true }));
  app.use('/api', cookieParser());
  app.use(authBasePath, authRoutes({ auth: deps.auth, secureCookies: config.isProduction }));
  app.use(authBasePath, securityRoutes({ accountSecurity: deps.accountSecurity, redis: deps.redis, logger }));
  app.use('/api', notFound);

  const staticDir = clientDir();
  // Source maps are for development: production serves none (they would hand out the client's source).
  if (config.isProduction) app.get(/\.map$/i, notFound);
  if (staticDir) {
    app.use(express.static(staticDir, { index: false, maxAge: '1h', setHeaders: (res, file) => {
      if (file.endsWith('index.html')) res.setHeader('Cache-Control', 'no-cache');
    } }));
    app.get(/^\/(?!api\/|socket\.io\/|metrics$|health$).*/, (_req, res) => {
      res.setHeader('Cache-Control', 'no-cache');
      res.sendFile(path.join(staticDir, 'index.html'));
    });
  }
  app.use(notFound);
  app.use(errorHandler(logger));

  const server = http.createServer(app);
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  const gateway = createGateway({
    server,
    deps,
    // One handler for every request event, each feature's for its own events only: tsc checks the lot.
    handlers: {
      ...authHandlers(deps.auth),
      ...taskHandlers(deps.tasks),
      ...reminderHandlers(deps.reminders),
      ...pushHandlers(deps.push),
      ...chatHandlers(deps.chat),
      ...searchHandlers(deps.search),
      ...accountHandlers(deps.account, deps.sessions),
      ...securityHandlers(deps.accountSecurity, deps.sessions),
    } satisfies HandlerMap,
    hooks: options.hooks ?? deps.metrics.gatewayHooks,
    runtime: { limiter: deps.eventLimiter, logger },
  });

  const ops = attachOps(gateway, deps, { limiter: deps.eventLimiter, logger, hooks: deps.metrics.gatewayHooks }, { intervalMs: options.opsIntervalMs });

  // Background work of every node: answers of dead nodes (CHAT-7), the hourly purge (TASK-4), reminders (REM-1).
  const stopJobs =
    options.jobs === false
      ? async () => undefined
      : (() => {
          const stopSweeper = startStreamSweeper(deps.chat, logger);
          const stopPurge = startPurgeJob({ redis: deps.redis, tasks: deps.tasks, security: deps.securityRepository, logger });
          const stopMailer = deps.mailer.start();
          const reminderJob = startReminderJob({ reminders: deps.reminders, logger, hooks: deps.metrics.reminderHooks });
          const stopWaking = deps.onReminderScheduled((at) => reminderJob.wake(at));
          let stopped: Promise<void> | undefined;
          return () => (stopped ??= (async () => {
            stopSweeper();
            stopPurge();
            stopWaking();
            await stopMailer();
            // The round in progress delivers what it claimed; a claim it could not mark lapses for another node.
            await reminderJob.stop();
          })());
        })();

  let httpClosed: Promise<void> | undefined;
  const closeHttp = () =>
    (httpClosed ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    }));

  return {
    app,
    server,
    gateway,
    async drain(deadline) {
      draining = true;
      void closeHttp();
      await stopJobs();
      const started = Date.now();
      const socketsClosed = gateway.drain(IN_FLIGHT_MAX_MS).then(() => logger.info({ ms: Date.now() - started }, 'drain: sockets closed'));
      await deps.assistant.settle(deadline);
      await socketsClosed;
      logger.info({ ms: Date.now() - started, streams: deps.assistant.active }, 'drain: answers done or out of time');
    },
    async close() {
      await stopJobs();
      ops.close();
      // Stop accepting, let in-flight requests finish, then close this node's sockets.
      const httpDone = closeHttp();
      // Answers this node was streaming end as interrupted and every tab is told (CHAT-7) while the adapter still runs.
      await deps.assistant.shutdown();
      await gateway.close();
      await httpDone;
    },
  };
}
