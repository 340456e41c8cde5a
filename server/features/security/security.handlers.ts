/** Socket handlers of account security (PROTOCOL §6.3b): password change, two-factor sign-in, the security log. */
import { defineHandler, type EventsOf, type HandlerContext, type HandlersOf } from '../../realtime/define-handler.js';
import type { ClientContext } from '../auth/auth.service.js';
import type { AccountSecurity } from './security.service.js';

/** Where a socket's request comes from, for the security log (AUTH-18). */
const clientOf = (ctx: HandlerContext): ClientContext => {
  const agent = ctx.socket.handshake.headers['user-agent'];
  return { ip: ctx.socket.handshake.address, userAgent: typeof agent === 'string' ? agent : undefined };
};

export function securityHandlers(security: AccountSecurity) {
  return {
    'user:password': defineHandler('user:password', async (ctx, input) => {
      await security.changePassword(ctx.userId, ctx.sessionId, input, clientOf(ctx));
      return {};
    }),
    'mfa:setup': defineHandler('mfa:setup', (ctx) => security.setupMfa(ctx.userId)),
    'mfa:enable': defineHandler('mfa:enable', async (ctx, input) => ({ recoveryCodes: await security.enableMfa(ctx.userId, ctx.sessionId, input, clientOf(ctx)) })),
    'mfa:disable': defineHandler('mfa:disable', async (ctx, input) => {
      await security.disableMfa(ctx.userId, ctx.sessionId, input, clientOf(ctx));
      return {};
    }),
    'mfa:recovery-codes': defineHandler('mfa:recovery-codes', async (ctx, input) => ({
      recoveryCodes: await security.regenerateRecoveryCodes(ctx.userId, ctx.sessionId, input, clientOf(ctx)),
    })),
    'security:log': defineHandler('security:log', (ctx, page) => security.log(ctx.userId, page)),
  } satisfies HandlersOf<EventsOf<'mfa' | 'security'> | 'user:password'>;
}
