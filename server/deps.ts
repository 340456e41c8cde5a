/** The composition root: every long-lived dependency, built once from the config. */
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { createOrm, ensureDatabase, migrate } from './db/orm.js';
import { createPostgres, type Sql } from './db/postgres.js';
import { connectRedis, createCommandClient, RedisWatch, type Redis } from './redis.js';
import { createTokenService, type TokenService } from './features/auth/tokens.js';
import { createPasswordHasher, createPasswordPolicy, type PasswordHasher } from './features/auth/passwords.js';
import { createBreachChecker } from './features/auth/breach.js';
import { createLockout } from './features/auth/lockout.js';
import { createRevocationStore, type RevocationStore } from './features/auth/revocation.js';
import { createAuthService, type AuthService } from './features/auth/auth.service.js';
import { Broadcaster } from './realtime/rooms.js';
import { createEventLimiter, limiterScripts, type EventLimiter } from './realtime/event-limiter.js';
import { createTasksService, type TasksService } from './features/tasks/tasks.service.js';
import { createAccountService, type AccountService } from './features/account/account.service.js';
import { randomBytes } from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import type { AnthropicCompatibleServer } from '../dev/offline-model/server.js';
import { Assistant } from './features/chat/assistant.js';
import { createChatViews } from './features/chat/views.js';
import { streamScripts } from './features/chat/stream-buffer.js';
import { createChatService, type ChatService } from './features/chat/chat.service.js';
import { createChatRepository } from './features/chat/chat.repository.js';
import { createSearchRepository } from './features/search/search.repository.js';
import { createSearchService, type SearchService } from './features/search/search.service.js';
import { createTasksRepository } from './features/tasks/tasks.repository.js';
import { createSessionsRepository, type SessionsRepository } from './features/auth/sessions.repository.js';
import { createSocketLimit, socketLimitScripts, type SocketLimit } from './realtime/socket-limit.js';
import { createUsersRepository, type UsersRepository } from './features/auth/users.repository.js';
import { createMetrics, type Metrics } from './features/ops/metrics.js';
import { createRemindersRepository } from './features/reminders/reminders.repository.js';
import { createRemindersService, type RemindersService } from './features/reminders/reminders.service.js';
import { createPushRepository } from './features/reminders/push.repository.js';
import { createPushNotifier, type PushNotifier } from './features/reminders/push.js';
import { createSecurityRepository, type SecurityRepository } from './features/security/security.repository.js';
import { createKeyedHash, createSecretBox } from './features/security/secret-box.js';
import { createSecondFactor } from './features/security/second-factor.js';
import { createSecurityLog, type SecurityLog } from './features/security/security-log.js';
import { createMailer, type Mailer } from './features/security/mailer.js';
import { createAccountSecurity, type AccountSecurity } from './features/security/security.service.js';

export interface Deps {
  config: Readonly<Config>;
  logger: Logger;
  orm: MikroORM;
  /** the repositories' PostgreSQL client (its own pool, beside the ORM's) */
  sql: Sql;
  users: UsersRepository;
  sessions: SessionsRepository;
  /** fail-fast command client (prefixed keys) */
  redis: Redis;
  redisWatch: RedisWatch;
  tokens: TokenService;
  hasher: PasswordHasher;
  revocation: RevocationStore;
  auth: AuthService;
  broadcaster: Broadcaster;
  eventLimiter: EventLimiter;
  /** sockets per user across nodes (RT-8), checked in the handshake's Redis call */
  sockets: SocketLimit;
  tasks: TasksService;
  reminders: RemindersService;
  /** Web Push to the users' browsers (off without VAPID keys) */
  push: PushNotifier;
  /** Tells the claim loop (`jobs/reminders.ts`) when a reminder was set; returns the unsubscribe. */
  onReminderScheduled(fn: (firesAt: Date) => void): () => void;
  account: AccountService;
  /** two-factor sign-in, password change and reset, the security log (PROTOCOL §3b) */
  accountSecurity: AccountSecurity;
  securityRepository: SecurityRepository;
  /** AUTH-18: the durable security log */
  securityLog: SecurityLog;
  /** outgoing mail through the PostgreSQL outbox; `start()` runs this node's delivery loop */
  mailer: Mailer;
  anthropic: Anthropic;
  /** the embedded offline model, when it serves (no API key outside production) */
  offlineModel: AnthropicCompatibleServer | undefined;
  assistant: Assistant;
  chat: ChatService;
  /** CHAT-11: the user's own tasks, messages and conversations by their words */
  search: SearchService;
  metrics: Metrics;
  close(): Promise<void>;
}

export async function createDeps(config: Readonly<Config>, logger: Logger): Promise<Deps> {
  const metrics = createMetrics();
  if (config.autoMigrate) await ensureDatabase(config.databaseUrl);
  const orm = await createOrm(config, logger);
  if (config.autoMigrate) {
    const applied = await migrate(orm);
    if (applied.length > 0) logger.info({ migrations: applied }, 'migrations applied');
  }
  const redis = createCommandClient(config, `sam:${config.nodeId}:cmd`, { ...streamScripts, ...limiterScripts, ...socketLimitScripts });
  const redisWatch = new RedisWatch(redis, logger);
  metrics.watchRedis(() => redisWatch.isUp);
  if (!(await connectRedis(redis))) logger.warn({ event: 'redis', state: 'down' }, 'redis unreachable at startup; serving degraded');

  const tokens = createTokenService({ secretKey: config.secretKey, accessTtlSeconds: config.accessTokenTtlSeconds });
  const hasher = createPasswordHasher();
  const breach = createBreachChecker({ apiUrl: config.hibpApiUrl, logger });
  const policy = createPasswordPolicy(config.passwordPolicy, breach);
  const lockout = createLockout({ redis, maxFailures: config.loginMaxFailures, lockoutSeconds: config.lockoutSeconds });
  const sql = createPostgres(config.databaseUrl, { applicationName: `sam:${config.nodeId}` });
  const users = createUsersRepository(sql);
  const sessions = createSessionsRepository(sql);
  const revocation = createRevocationStore({ sessions, redis, redisWatch, logger, accessTtlSeconds: config.accessTokenTtlSeconds });
  const sockets = createSocketLimit({ redis, redisWatch, nodeId: config.nodeId, max: config.maxSocketsPerUser });
  const broadcaster = new Broadcaster(() => redisWatch.isUp);
  const securityRepository = createSecurityRepository(sql);
  // Each use of SECRET_KEY has its own HKDF label (AUTH-14).
  const secondFactor = createSecondFactor({
    repository: securityRepository,
    box: createSecretBox(config.secretKey, 'totp-secret'),
    codeHash: createKeyedHash(config.secretKey, 'recovery-code'),
  });
  const securityLog = createSecurityLog({
    repository: securityRepository,
    logger,
    onNewDevice: (userId, session) => broadcaster.toUser(userId, 'security:new-device', { session }),
    hooks: metrics.authHooks,
  });
  const mailer = createMailer({
    repository: securityRepository,
    box: createSecretBox(config.secretKey, 'mail-outbox'),
    logger,
    smtpUrl: config.smtpUrl,
    from: config.mailFrom,
    isProduction: config.isProduction,
  });
  const auth = createAuthService({
    orm,
    sessions,
    logger,
    hasher,
    policy,
    lockout,
    tokens,
    revocation,
    refreshTokenTtlSeconds: config.refreshTokenTtlSeconds,
    sessionMaxSeconds: config.sessionMaxSeconds,
    security: securityRepository,
    secondFactor,
    securityLog,
    mfaChallengeMs: config.mfaChallengeMs,
  });

  broadcaster.onBroadcast(metrics.countBroadcast);
  const eventLimiter = createEventLimiter({
    redis,
    eventsPerMinute: config.socketEventsPerMinute,
    chatPerMinute: config.chatMessagesPerMinute,
  });
  const scheduledListeners = new Set<(firesAt: Date) => void>();
  const tasks = createTasksService({
    tasks: createTasksRepository(sql),
    events: {
      changed: (userId, data) => broadcaster.toUser(userId, 'task:changed', data),
      removed: (userId, data) => broadcaster.toUser(userId, 'task:removed', data),
      reminderCleared: (userId, id) => broadcaster.toUser(userId, 'reminder:cleared', { id }),
      reminderScheduled: (firesAt) => {
        for (const fn of scheduledListeners) fn(firesAt);
      },
    },
  });
  const push = createPushNotifier({ repository: createPushRepository(sql), config, logger });
  const reminders = createRemindersService({
    reminders: createRemindersRepository(sql),
    notifier: push,
    hooks: metrics.reminderHooks,
    events: {
      due: (userId, data) => broadcaster.toUser(userId, 'reminder:due', data),
      changed: (userId, data) => broadcaster.toUser(userId, 'reminder:changed', data),
      cleared: (userId, data) => broadcaster.toUser(userId, 'reminder:cleared', data),
    },
    logger,
  });
  // One code path to Claude: the official SDK, pointed at the embedded offline model when no key is set.
  // A dynamic import, so that a process with a key (every production one) never loads it.
  const offlineModel = config.anthropic.offline
    ? await (await import('../dev/offline-model/server.js')).createAnthropicCompatibleServer({ logger })
    : undefined;
  if (offlineModel) logger.info({ url: offlineModel.url }, 'no ANTHROPIC_API_KEY: the embedded offline model answers');
  const anthropic = new Anthropic({
    apiKey: config.anthropic.apiKey ?? randomBytes(24).toString('base64url'),
    baseURL: offlineModel?.url ?? config.anthropic.baseUrl ?? null,
    maxRetries: 0,
    timeout: config.upstreamIdleTimeoutMs,
  });
  const chatRepository = createChatRepository(sql);
  const search = createSearchService({ search: createSearchRepository(sql) });
  const views = createChatViews({ chat: chatRepository, redis, broadcaster });
  const assistant = new Assistant({
    redis,
    anthropic,
    model: config.anthropic.model,
    tasks,
    search,
    broadcaster,
    views,
    logger,
    nodeId: config.nodeId,
    hooks: metrics.chatHooks,
    idleTimeoutMs: config.upstreamIdleTimeoutMs,
  });
  const chat = createChatService({ chat: chatRepository, tasks, redis, broadcaster, assistant, views, logger, nodeId: config.nodeId, model: config.anthropic.model });
  const account = createAccountService({ orm, users, auth, tasks, broadcaster, logger, securityLog, contributors: [chat] });
  const accountSecurity = createAccountSecurity({
    auth,
    repository: securityRepository,
    secondFactor,
    hasher,
    policy,
    mailer,
    securityLog,
    logger,
    appUrl: config.appUrl,
    // Every tab of the user hears that two-factor went on or off (`mfaEnabled`).
    userChanged: async (userId) => broadcaster.toUser(userId, 'user:changed', { user: await account.me(userId) }),
  });

  return {
    config,
    logger,
    orm,
    sql,
    users,
    sessions,
    redis,
    redisWatch,
    tokens,
    hasher,
    revocation,
    auth,
    broadcaster,
    eventLimiter,
    sockets,
    tasks,
    reminders,
    push,
    onReminderScheduled(fn) {
      scheduledListeners.add(fn);
      return () => scheduledListeners.delete(fn);
    },
    account,
    accountSecurity,
    securityRepository,
    securityLog,
    mailer,
    anthropic,
    offlineModel,
    assistant,
    chat,
    search,
    metrics,
    async close() {
      metrics.stop();
      await assistant.shutdown();
      await push.drain();
      await accountSecurity.drain();
      await securityLog.flush();
      await offlineModel?.close();
      revocation.close();
      await sockets.close();
      // The counts of the last moments go to Redis, so the other nodes still see them.
      await eventLimiter.sync();
      eventLimiter.close();
      redisWatch.close();
      redis.disconnect();
      await Promise.all([orm.close(true), sql.end({ timeout: 5 })]);
    },
  };
}
