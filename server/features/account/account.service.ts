/** The account (PROTOCOL §6.3): profile, export, deletion and sessions. */
import type { MikroORM } from '@mikro-orm/postgresql';
import { appError, ErrorCode } from '../../errors.js';
import type { UserUpdate, SessionView, UserExport } from '../../../shared/schemas/account.js';
import type { UserView } from '../../../shared/schemas/auth.js';
import { securityLog, type Logger } from '../../logger.js';
import { toUserView, type AuthService, type ClientContext } from '../auth/auth.service.js';
import { UserSchema } from '../auth/user.entity.js';
import { SessionSchema } from '../auth/session.entity.js';
import type { UsersRepository } from '../auth/users.repository.js';
import type { TasksService } from '../tasks/tasks.service.js';
import type { Broadcaster } from '../../realtime/rooms.js';
import type { SecurityLog } from '../security/security-log.js';

/** What other features contribute to an export (the assistant adds conversations and messages), and do before a deletion. */
export interface ExportContributor {
  exportFor(userId: string): Promise<Partial<Pick<UserExport, 'conversations' | 'messages'>>>;
  /** Stops the user's work in progress (the assistant's answers being generated) before their data goes. */
  stopAllOf?(userId: string): Promise<void>;
}

export interface AccountService {
  me(userId: string): Promise<UserView>;
  update(userId: string, patch: UserUpdate): Promise<UserView>;
  exportData(userId: string): Promise<UserExport>;
  deleteAccount(userId: string, password: string): Promise<void>;
  listSessions(userId: string, currentSessionId: string): Promise<SessionView[]>;
  revokeSession(userId: string, sessionId: string, client: ClientContext): Promise<void>;
}

export function createAccountService(deps: {
  /** reads of the account (MikroORM); its writes go through `users` and the auth service */
  orm: MikroORM;
  users: Pick<UsersRepository, 'updateProfile'>;
  auth: AuthService;
  tasks: TasksService;
  broadcaster: Broadcaster;
  logger: Logger;
  /** AUTH-18: the durable security log */
  securityLog: Pick<SecurityLog, 'record'>;
  contributors?: ExportContributor[];
}): AccountService {
  const { orm, auth, tasks, broadcaster, logger } = deps;
  const contributors = deps.contributors ?? [];

  async function loadUser(userId: string) {
    const em = orm.em.fork();
    const user = await em.findOne(UserSchema, userId);
    if (!user) throw appError(ErrorCode.NOT_FOUND, { message: 'Account not found' });
    return { em, user };
  }

  return {
    async me(userId) {
      return toUserView((await loadUser(userId)).user);
    },

    async update(userId, patch) {
      const user = await deps.users.updateProfile(userId, { fullName: patch.fullName?.trim(), timezone: patch.timezone });
      if (!user) throw appError(ErrorCode.NOT_FOUND, { message: 'Account not found' });
      const view = toUserView(user);
      broadcaster.toUser(userId, 'user:changed', { user: view });
      return view;
    },

    async exportData(userId) {
      const { em, user } = await loadUser(userId);
      const sessions = await em.find(SessionSchema, { user: userId }, { orderBy: { createdAt: 'asc' } });
      const extra = await Promise.all(contributors.map((c) => c.exportFor(userId)));
      return {
        user: toUserView(user),
        tasks: await tasks.exportAll(userId),
        conversations: extra.flatMap((e) => e.conversations ?? []),
        messages: extra.flatMap((e) => e.messages ?? []),
        sessions: sessions.map((s) => ({
          id: s.id,
          createdAt: s.createdAt.toISOString(),
          lastUsedAt: s.lastUsedAt.toISOString(),
          userAgent: s.userAgent ?? null,
          ip: s.ip ?? null,
          revokedAt: s.revokedAt?.toISOString() ?? null,
        })),
      };
    },

    async deleteAccount(userId, password) {
      // Counted toward the email's lockout like a login (AUTH-4): a hijacked socket is no password oracle.
      if (!(await auth.verifyPassword(userId, password))) throw appError(ErrorCode.INVALID_CREDENTIALS, { message: 'The password is not right' });
      // Stop the answers being generated, revoke (durable + blacklist + live sockets), then delete everything (cascades).
      await Promise.all(contributors.map((c) => c.stopAllOf?.(userId)));
      await auth.revokeSessions(userId, 'all', 'account_deleted');
      const em = orm.em.fork();
      await em.nativeDelete(UserSchema, { id: userId });
      securityLog(logger, 'account_deleted', { userId });
    },

    async listSessions(userId, currentSessionId) {
      const em = orm.em.fork();
      const now = new Date();
      const sessions = await em.find(
        SessionSchema,
        { user: userId, revokedAt: null, absoluteExpiresAt: { $gt: now } },
        { orderBy: { lastUsedAt: 'desc' } },
      );
      return sessions.map((s) => ({
        id: s.id,
        createdAt: s.createdAt.toISOString(),
        lastUsedAt: s.lastUsedAt.toISOString(),
        userAgent: s.userAgent ?? null,
        current: s.id === currentSessionId,
      }));
    },

    async revokeSession(userId, sessionId, client) {
      const em = orm.em.fork();
      const session = await em.findOne(SessionSchema, { id: sessionId, user: userId });
      if (!session) throw appError(ErrorCode.NOT_FOUND, { message: 'Session not found' });
      await auth.revokeSessions(userId, [sessionId], 'session_revoked');
      securityLog(logger, 'session_revoked_by_user', { userId, sessionId });
      deps.securityLog.record('session_revoked', { userId, ...client, details: { sessionId } });
    },
  };
}
