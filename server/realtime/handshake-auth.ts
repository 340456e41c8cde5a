/**
 * RT-1, RT-4, RT-8 and AUTH-12 for every namespace: the handshake checks the
 * access token (signature, expiry, revocation), that its user still exists
 * and their role as PostgreSQL has it now, and the user's socket limit; a
 * connected socket is closed at its token's expiry unless `auth:refresh`
 * pushed that back.
 *
 * One handshake costs one Redis call and one PostgreSQL read, each shared with
 * the other handshakes of its batch: the blacklist entry and the socket place
 * in one script (`socket-limit.ts`), the user's row (the one `session:ready`
 * needs) in one query.
 */
import { AppError, appError, ErrorCode, isUnavailableError } from '../errors.js';
import { securityLog, type Logger } from '../logger.js';
import type { AuthService } from '../features/auth/auth.service.js';
import type { ReadyUserRow } from '../features/auth/users.repository.js';
import type { Role } from '../../shared/schemas/auth.js';
import type { SocketLimit } from './socket-limit.js';
import type { SocketData } from './types.js';

/** The codes a refused handshake may carry in its `connect_error` message. */
const handshakeCodes = new Set<ErrorCode>([
  ErrorCode.UNAUTHENTICATED,
  ErrorCode.TOKEN_EXPIRED,
  ErrorCode.TOKEN_REVOKED,
  ErrorCode.FORBIDDEN,
  ErrorCode.RATE_LIMITED,
  ErrorCode.UNAVAILABLE,
]);

interface HandshakingSocket {
  handshake: { auth: unknown };
  data: Partial<SocketData>;
  conn: { once(event: 'close', fn: () => void): unknown; off(event: 'close', fn: () => void): unknown };
}

/** What a handshake leaves for its namespace's `connection` handler. */
export interface Admitted {
  /** the user's row as read at the handshake */
  user: ReadyUserRow;
  /** Gives the socket's place (RT-8) back: call once, when the socket disconnects. */
  release(): void;
}

const admitted = new WeakMap<object, Admitted & { onClose: () => void }>();

/**
 * What the handshake of `socket` left, once: the `connection` handler takes it. Until then, a connection that
 * closes before its socket connects (Socket.IO then drops the socket without a `disconnect`) gives its place back.
 */
export function takeAdmitted(socket: HandshakingSocket): Admitted | undefined {
  const found = admitted.get(socket);
  if (!found) return undefined;
  admitted.delete(socket);
  socket.conn.off('close', found.onClose);
  return found;
}

/**
 * Security log lines for refused handshakes, at most `perSecond` a second (a flood of bad tokens must not
 * flood the log); each line after a quiet spell says how many were left out (`suppressed`). The metric
 * counts every one.
 */
export class HandshakeFailureLog {
  private windowStart = 0;
  private inWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly logger: Logger,
    private readonly perSecond = 10,
  ) {}

  record(fields: Record<string, unknown>): void {
    const now = Date.now();
    if (now - this.windowStart >= 1_000) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.perSecond) {
      this.suppressed++;
      return;
    }
    this.inWindow++;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    securityLog(this.logger, 'socket_auth_failed', suppressed > 0 ? { ...fields, suppressed } : fields);
  }
}

export function handshakeAuth(deps: {
  auth: AuthService;
  /** the user's row (batched with other handshakes): undefined when the account no longer exists */
  loadUser(userId: string): Promise<ReadyUserRow | undefined>;
  sockets: SocketLimit;
  failures: HandshakeFailureLog;
  onFailure: (reason: ErrorCode) => void;
  /** only this role may connect (others: FORBIDDEN) */
  role?: Role;
  namespace?: string;
}): (socket: HandshakingSocket, next: (err?: Error) => void) => Promise<void> {
  return async (socket, next) => {
    const token: unknown = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
    let release: (() => void) | undefined;
    try {
      const claims = deps.auth.verifyToken(token);
      const check = deps.sockets.check(claims.sid, claims.sub);
      release = check.release;
      const [user] = await Promise.all([deps.loadUser(claims.sub), deps.auth.assertNotRevoked(claims, check.blacklist)]);
      if (!user) throw appError(ErrorCode.TOKEN_REVOKED, { message: 'The account no longer exists' });
      // The token's role never outranks the database's (AUTH-12); a grant shows from the next token.
      const role: Role = claims.role === 'admin' && user.role === 'admin' ? 'admin' : 'user';
      if (deps.role && role !== deps.role) throw appError(ErrorCode.FORBIDDEN);
      if (!(await check.admitted)) throw appError(ErrorCode.RATE_LIMITED, { message: 'Too many connections for this account' });
      socket.data = { userId: claims.sub, sessionId: claims.sid, role, exp: claims.exp };
      const onClose = () => {
        admitted.delete(socket);
        check.release();
      };
      socket.conn.once('close', onClose);
      admitted.set(socket, { user, release: check.release, onClose });
      next();
    } catch (err) {
      release?.();
      const code =
        err instanceof AppError && handshakeCodes.has(err.code) ? err.code : isUnavailableError(err) ? ErrorCode.UNAVAILABLE : ErrorCode.UNAUTHENTICATED;
      deps.onFailure(code);
      deps.failures.record({ reason: code, ...(deps.namespace ? { namespace: deps.namespace } : {}) });
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

/**
 * The sockets by the second their token expires, and one timer for them all: a timer per socket cost a timer
 * list per socket (each socket's delay differs) on the connect path, and memory per socket.
 */
const expiring = new Map<number, Set<ExpiringSocket>>();
const expiresAt = new WeakMap<ExpiringSocket, number>();
/** How late, at most, after its token's expiry a socket is told and closed. */
const EXPIRY_TICK_MS = 250;
let ticker: NodeJS.Timeout | undefined;

function expireDue(): void {
  const now = Date.now() / 1000;
  for (const [second, sockets] of expiring) {
    if (second > now) continue;
    expiring.delete(second);
    for (const socket of sockets) {
      expiresAt.delete(socket);
      if (!socket.connected) continue;
      socket.emit('auth:expired', { expiredAt: new Date(socket.data.exp * 1000).toISOString() });
      socket.disconnect(true);
    }
  }
  if (expiring.size === 0) {
    clearInterval(ticker);
    ticker = undefined;
  }
}

/** (Re)arms the emission of `auth:expired`, and the close, at `socket.data.exp`. */
export function scheduleExpiry(socket: ExpiringSocket): void {
  clearExpiry(socket);
  const second = socket.data.exp;
  let sockets = expiring.get(second);
  if (!sockets) {
    sockets = new Set();
    expiring.set(second, sockets);
  }
  sockets.add(socket);
  expiresAt.set(socket, second);
  if (!ticker) {
    ticker = setInterval(expireDue, EXPIRY_TICK_MS);
    ticker.unref();
  }
}

export function clearExpiry(socket: ExpiringSocket): void {
  const second = expiresAt.get(socket);
  if (second === undefined) return;
  expiresAt.delete(socket);
  const sockets = expiring.get(second);
  sockets?.delete(socket);
  if (sockets?.size === 0) expiring.delete(second);
}
