/** Socket handlers for the account and its sessions (PROTOCOL §6.3). */
import { defineHandler, type EventsOf, type HandlersOf } from '../../realtime/define-handler.js';
import type { SessionsRepository } from '../auth/sessions.repository.js';
import { socketClient } from '../auth/socket-client.js';
import type { AccountService } from './account.service.js';

export function accountHandlers(account: AccountService, sessions: Pick<SessionsRepository, 'userAgent'>) {
  return {
    'user:me': defineHandler('user:me', async (ctx) => ({ user: await account.me(ctx.userId) })),
    'user:update': defineHandler('user:update', async (ctx, patch) => ({ user: await account.update(ctx.userId, patch) })),
    'user:export': defineHandler('user:export', (ctx) => account.exportData(ctx.userId)),
    'user:delete': defineHandler('user:delete', async (ctx, { password }) => {
      await account.deleteAccount(ctx.userId, password);
      return {};
    }),
    'session:list': defineHandler('session:list', async (ctx) => ({ sessions: await account.listSessions(ctx.userId, ctx.sessionId) })),
    'session:revoke': defineHandler('session:revoke', async (ctx, { id }) => {
      await account.revokeSession(ctx.userId, id, await socketClient(ctx, sessions));
      return {};
    }),
  } satisfies HandlersOf<Exclude<EventsOf<'user' | 'session'>, 'user:password'>>;
}
