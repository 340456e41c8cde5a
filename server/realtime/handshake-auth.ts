/**
 * RT-1 and RT-4 for every namespace: the handshake checks the access token
 * (signature, expiry, revocation) and, where asked, the role; a connected socket
 * is closed at its token's expiry unless `auth:refresh` pushed that back.
 */
import { AppError, ErrorCode } from '../errors.js';
import { securityLog, type Logger } from '../logger.js';
import type { AuthService } from '../features/auth/auth.service.js';
import type { Role } from '../../shared/schemas/auth.js';
import type { SocketData } from './types.js';

/** The codes a refused handshake may carry in its `connect_error` message. */
const handshakeCodes = new Set<ErrorCode>([
  ErrorCode.UNAUTHENTICATED,
  ErrorCode.TOKEN_EXPIRED,
  ErrorCode.TOKEN_REVOKED,
  ErrorCode.FORBIDDEN,
  ErrorCode.UNAVAILABLE,
]);

interface HandshakingSocket {
  handshake: { auth: unknown };
  data: Partial<SocketData>;
}

export function handshakeAuth(deps: {
  auth: AuthService;
  logger: Logger;
  onFailure: (reason: ErrorCode) => void;
  /** only this role may connect (others: FORBIDDEN) */
  role?: Role;
  namespace?: string;
}): (socket: HandshakingSocket, next: (err?: Error) => void) => Promise<void> {
  return async (socket, next) => {
    const token: unknown = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
    try {
      const claims = await deps.auth.authenticate(token);
      if (deps.role && claims.role !== deps.role) throw new AppError(ErrorCode.FORBIDDEN, 'Not allowed');
      socket.data = { userId: claims.sub, sessionId: claims.sid, role: claims.role, exp: claims.exp };
      next();
    } catch (err) {
      const code = err instanceof AppError && handshakeCodes.has(err.code) ? err.code : ErrorCode.UNAUTHENTICATED;
      deps.onFailure(code);
      securityLog(deps.logger, 'socket_auth_failed', { reason: code, ...(deps.namespace ? { namespace: deps.namespace } : {}) });
      next(Object.assign(new Error(code), { data: { code } }));
    }
  };
}

interface ExpiringSocket {
  data: SocketData;
  connected: boolean;
  emit(event: 'auth:expired', data: { expiredAt: string }): unknown;
  disconnect(close?: boolean): unknown;
}

const expiryTimers = new WeakMap<ExpiringSocket, NodeJS.Timeout>();

/** (Re)arms the timer that emits `auth:expired` and closes the socket at `socket.data.exp`. */
export function scheduleExpiry(socket: ExpiringSocket): void {
  clearTimeout(expiryTimers.get(socket));
  const timer = setTimeout(() => {
    if (!socket.connected) return;
    socket.emit('auth:expired', { expiredAt: new Date(socket.data.exp * 1000).toISOString() });
    socket.disconnect(true);
  }, Math.max(0, socket.data.exp * 1000 - Date.now()));
  timer.unref();
  expiryTimers.set(socket, timer);
}

export function clearExpiry(socket: ExpiringSocket): void {
  clearTimeout(expiryTimers.get(socket));
  expiryTimers.delete(socket);
}
