/** The socket side of the auth lifecycle: `auth:refresh` pushes back a live socket's expiry (RT-4). */
import { AppError, ErrorCode } from '../../errors.js';
import { defineHandler, type EventsOf, type HandlersOf } from '../../realtime/define-handler.js';
import { scheduleExpiry } from '../../realtime/handshake-auth.js';
import type { AuthService } from './auth.service.js';

export function authHandlers(auth: AuthService) {
  return {
    'auth:refresh': defineHandler('auth:refresh', async (ctx, { token }) => {
      const claims = await auth.authenticate(token);
      if (claims.sid !== ctx.sessionId || claims.sub !== ctx.userId) {
        throw new AppError(ErrorCode.FORBIDDEN, 'The token belongs to another session');
      }
      if (claims.exp > ctx.socket.data.exp) {
        ctx.socket.data.exp = claims.exp;
        scheduleExpiry(ctx.socket);
      }
      return { expiresAt: new Date(ctx.socket.data.exp * 1000).toISOString() };
    }),
  } satisfies HandlersOf<EventsOf<'auth'>>;
}
