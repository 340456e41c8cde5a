/** Socket handlers of account security (PROTOCOL §6.3b): password change, two-factor sign-in, the security log. */
import { defineHandler, type EventsOf, type HandlerContext, type HandlersOf } from '../../realtime/define-handler.js';
import type { SessionsRepository } from '../auth/sessions.repository.js';
import { socketClient } from '../auth/socket-client.js';
import type { AccountSecurity } from './security.service.js';

export function securityHandlers(security: AccountSecurity, sessions: Pick<SessionsRepository, 'userAgent'>) {
  const clientOf = (ctx: HandlerContext) => socketClient(ctx, sessions);
  return {
    'user:password': defineHandler('user:password', async (ctx, input) => {
      await security.changePassword(ctx.userId, ctx.sessionId, input, await clientOf(ctx));
      return {};
    }),
    'mfa:setup': defineHandler('mfa:setup', (ctx) => security.setupMfa(ctx.userId)),
    'mfa:enable': defineHandler('mfa:enable', async (ctx, input) => ({ recoveryCodes: await security.enableMfa(ctx.userId, ctx.sessionId, input, await clientOf(ctx)) })),
    'mfa:disable': defineHandler('mfa:disable', async (ctx, input) => {
      await security.disableMfa(ctx.userId, ctx.sessionId, input, await clientOf(ctx));
      return {};
    }),
    'mfa:recovery-codes': defineHandler('mfa:recovery-codes', async (ctx, input) => ({
      recoveryCodes: await security.regenerateRecoveryCodes(ctx.userId, ctx.sessionId, input, await clientOf(ctx)),
    })),
    'security:log': defineHandler('security:log', (ctx, page) => security.log(ctx.userId, page)),
  } satisfies HandlersOf<EventsOf<'mfa' | 'security'> | 'user:password'>;
}
