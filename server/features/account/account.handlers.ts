/** Socket handlers for the account and its sessions (PROTOCOL §6.3). */
import { requestSchemas as s } from '../../../shared/events.js';
import { defineHandler, type Handler } from '../../realtime/define-handler.js';
import type { AccountService } from './account.service.js';

export function accountHandlers(account: AccountService): Handler[] {
  return [
    defineHandler('user:me', s['user:me'], async (ctx) => ({ user: await account.me(ctx.userId) })),
    defineHandler('user:update', s['user:update'], async (ctx, patch) => ({ user: await account.update(ctx.userId, patch) })),
    defineHandler('user:export', s['user:export'], (ctx) => account.exportData(ctx.userId)),
    defineHandler('user:delete', s['user:delete'], async (ctx, { password }) => {
      await account.deleteAccount(ctx.userId, password);
      return {};
    }),
    defineHandler('session:list', s['session:list'], async (ctx) => ({ sessions: await account.listSessions(ctx.userId, ctx.sessionId) })),
    defineHandler('session:revoke', s['session:revoke'], async (ctx, { id }) => {
      await account.revokeSession(ctx.userId, id);
      return {};
    }),
  ] as Handler[];
}
