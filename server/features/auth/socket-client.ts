/** Where a socket's request comes from, for the security log (AUTH-18). */
import type { HandlerContext } from '../../realtime/define-handler.js';
import type { ClientContext } from './auth.service.js';
import type { SessionsRepository } from './sessions.repository.js';

/**
 * The socket's address, and the user agent its session signed in with. A socket keeps no HTTP headers once
 * connected (the gateway lets the upgrade request go, for memory), so the agent is read when an event needs it
 * rather than held by every socket.
 */
export async function socketClient(ctx: HandlerContext, sessions: Pick<SessionsRepository, 'userAgent'>): Promise<ClientContext> {
  return { ip: ctx.socket.handshake.address, userAgent: await sessions.userAgent(ctx.sessionId) };
}
