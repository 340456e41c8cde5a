/**
 * The `/ops` namespace (PROTOCOL §7), for admins only: every node publishes a
 * small snapshot of its own figures to Redis each second; each node pushes the
 * merged cluster view to its own admin sockets; a node that stops reporting
 * drops out within a few seconds. Admins can list who is online and disconnect
 * a user's sockets or revoke their sessions (audited).
 *
 * An admin's rights are re-read from PostgreSQL, never taken from the token
 * alone (AUTH-7, AUTH-12): `/ops` sockets join their session and user rooms,
 * so every revocation closes them as it closes the app's; each `/ops` event
 * checks the session and the role first; and each second, before it pushes,
 * a node closes its `/ops` sockets whose session ended or whose account lost
 * the role (`session:revoked`, `role_changed` for an operator's revoke).
 */
import type { Namespace, Server } from 'socket.io';
import type { Deps } from '../../deps.js';
import { appError, ErrorCode } from '../../errors.js';
import { securityLog } from '../../logger.js';
import { revocationReasons, type RevocationReason } from '../../../shared/constants.js';
import type { OpsClientToServerEvents, OpsServerToClientEvents } from '../../../shared/events.js';
import type { NodeSnapshot, OnlineUser, OpsSnapshot } from '../../../shared/schemas/ops.js';
import { createDispatcher, defineOpsHandler, type HandlerRuntime, type OpsHandlerMap } from '../../realtime/define-handler.js';
import { sessionRoom, userRoom } from '../../realtime/rooms.js';
import type { AppSocket, SocketData } from '../../realtime/types.js';
import type { Gateway } from '../../realtime/gateway.js';
import { forgetNode, freshNodes, recordNode } from '../../realtime/nodes.js';
import { clearExpiry, scheduleExpiry, takeAdmitted } from '../../realtime/handshake-auth.js';
import { cacheHitRatio } from './metrics.js';

const nodeKey = (id: string) => `ops:node:${id}`;
/** the admins' namespace; its sockets join the same rooms as the app's */
export const OPS_NAMESPACE = '/ops';
/** a node whose last report is older than this is left out of the view */
export const NODE_STALE_MS = 5_000;

type OpsNamespace = Namespace<OpsClientToServerEvents, OpsServerToClientEvents, Record<string, never>, SocketData>;

export interface OpsOptions {
  /** how often this node reports and pushes, ms */
  intervalMs?: number;
}

export function mergeSnapshots(nodes: NodeSnapshot[], at = new Date()): OpsSnapshot {
  const sum = (f: (n: NodeSnapshot) => number) => nodes.reduce((s, n) => s + f(n), 0);
  return {
    at: at.toISOString(),
    nodes: [...nodes].sort((a, b) => a.id.localeCompare(b.id)),
    totals: {
      sockets: sum((n) => n.sockets),
      users: sum((n) => n.users),
      eventsPerSecond: sum((n) => n.eventsPerSecond),
      handshakeFailures: sum((n) => n.handshakeFailures),
      rateLimited: sum((n) => n.rateLimited),
      activeStreams: sum((n) => n.activeStreams),
      outputTokensPerSecond: sum((n) => n.outputTokensPerSecond),
      cacheReadTokens: sum((n) => n.cacheReadTokens),
      promptTokens: sum((n) => n.promptTokens),
      cacheHitRatio: cacheHitRatio(sum((n) => n.cacheReadTokens), sum((n) => n.promptTokens)),
      rssBytes: sum((n) => n.rssBytes),
    },
  };
}

const knownReasons = new Set<string>(revocationReasons);

/** Why an `/ops` socket may not stay, from its session's row as PostgreSQL has it now; undefined when it may. */
function lostRights(row: { role: string; revoked: boolean; revokedReason: string | null; expired: boolean } | undefined): RevocationReason | undefined {
  if (!row) return 'account_deleted';
  if (row.revoked) return row.revokedReason !== null && knownReasons.has(row.revokedReason) ? (row.revokedReason as RevocationReason) : 'session_revoked';
  if (row.expired) return 'session_revoked';
  if (row.role !== 'admin') return 'role_changed';
  return undefined;
}

export function attachOps(gateway: Gateway, deps: Deps, runtime: HandlerRuntime, options: OpsOptions = {}): { close(): void } {
  const { config, redis, metrics, logger, auth, broadcaster } = deps;
  const io = gateway.io;
  const intervalMs = options.intervalMs ?? 1_000;
  const startedAt = new Date().toISOString();
  const ops = (io as unknown as Server).of(OPS_NAMESPACE) as unknown as OpsNamespace;

  ops.use(gateway.handshake({ role: 'admin', namespace: OPS_NAMESPACE }));
  broadcaster.addNamespace(ops as unknown as Namespace);

  /** Tells the socket why and closes it. */
  function expel(socket: { emit: (event: 'session:revoked', data: { reason: RevocationReason }) => unknown; disconnect: (close?: boolean) => unknown }, reason: RevocationReason): void {
    socket.emit('session:revoked', { reason });
    socket.disconnect(true);
  }

  /** Each `/ops` event, first: is the session still alive and its account still an admin? */
  async function authorize(socket: AppSocket): Promise<void> {
    const [row] = await deps.sessions.access([socket.data.sessionId]);
    const lost = lostRights(row);
    if (!lost) return;
    setImmediate(() => expel(socket as never, lost));
    throw appError(lost === 'role_changed' ? ErrorCode.FORBIDDEN : ErrorCode.TOKEN_REVOKED);
  }

  /**
   * Closes this node's `/ops` sockets that lost their rights since they connected: an operator's revoke of the
   * role at once; an ended session at the second look, as the revocation's own broadcast closes it first (this
   * is the net under a broadcast that was lost).
   */
  const seenEnded = new WeakSet<object>();
  async function recheck(): Promise<void> {
    const sockets = [...ops.sockets.values()];
    if (sockets.length === 0) return;
    const rows = new Map((await deps.sessions.access([...new Set(sockets.map((s) => s.data.sessionId))])).map((r) => [r.id, r]));
    for (const socket of sockets) {
      const lost = lostRights(rows.get(socket.data.sessionId));
      if (!lost || !socket.connected) continue;
      if (lost === 'role_changed' || seenEnded.has(socket)) expel(socket, lost);
      else seenEnded.add(socket);
    }
  }

  async function onlineUsers(): Promise<OnlineUser[]> {
    const sockets = await io.fetchSockets();
    const byUser = new Map<string, { sockets: number; sessions: Set<string> }>();
    for (const s of sockets) {
      const entry = byUser.get(s.data.userId) ?? { sockets: 0, sessions: new Set<string>() };
      entry.sockets++;
      entry.sessions.add(s.data.sessionId);
      byUser.set(s.data.userId, entry);
    }
    const ids = [...byUser.keys()];
    const emails = await deps.users.emails(ids);
    return ids
      .map((userId) => ({ userId, email: emails.get(userId) ?? '', sockets: byUser.get(userId)!.sockets, sessions: byUser.get(userId)!.sessions.size }))
      .sort((a, b) => b.sockets - a.sockets || a.email.localeCompare(b.email));
  }

  const handlers = {
    'ops:users': defineOpsHandler('ops:users', async () => ({ users: await onlineUsers() })),
    'ops:disconnect-user': defineOpsHandler('ops:disconnect-user', async (ctx, { userId }) => {
      const sockets = (await io.in(userRoom(userId)).fetchSockets()).length;
      // A kick, not a sign-out: the sessions stay valid and the clients may reconnect (revoke-user signs out).
      io.in(userRoom(userId)).disconnectSockets(true);
      securityLog(logger, 'admin_action', { action: 'disconnect_user', adminId: ctx.userId, userId, sockets });
      return { sockets };
    }),
    'ops:revoke-user': defineOpsHandler('ops:revoke-user', async (ctx, { userId }) => {
      const revoked = await auth.revokeSessions(userId, 'all', 'admin_revoked');
      securityLog(logger, 'admin_action', { action: 'revoke_user', adminId: ctx.userId, userId, sessions: revoked.length });
      deps.securityLog.record('session_revoked', { userId, details: { by: 'admin', adminId: ctx.userId, sessions: revoked.length } });
      return { sessions: revoked.length };
    }),
  } satisfies OpsHandlerMap;

  const dispatch = createDispatcher(handlers, { ...runtime, authorize });
  ops.on('connection', (socket) => {
    const admitted = takeAdmitted(socket);
    dispatch(socket as unknown as AppSocket);
    // Revocations reach /ops sockets through the same rooms as the app's (RT-5).
    void socket.join([userRoom(socket.data.userId), sessionRoom(socket.data.sessionId)]);
    // An admin view lives no longer than its token.
    scheduleExpiry(socket);
    socket.on('disconnect', () => {
      clearExpiry(socket);
      admitted?.release();
    });
    void push(socket);
  });

  function ownSnapshot(): NodeSnapshot {
    return { id: config.nodeId, startedAt, ...metrics.live() };
  }

  async function clusterSnapshot(): Promise<OpsSnapshot> {
    const own = ownSnapshot();
    try {
      const ids = await freshNodes(redis, NODE_STALE_MS);
      const raw = ids.length ? await redis.mget(ids.map(nodeKey)) : [];
      const nodes = raw.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as NodeSnapshot);
      const others = nodes.filter((n) => n.id !== own.id);
      return mergeSnapshots([own, ...others]);
    } catch {
      return mergeSnapshots([own]);
    }
  }

  async function report(): Promise<void> {
    try {
      await redis.set(nodeKey(config.nodeId), JSON.stringify(ownSnapshot()), 'PX', NODE_STALE_MS * 2);
      await recordNode(redis, config.nodeId);
    } catch {
      // Redis is away: the view shows this node alone until it returns.
    }
  }

  async function push(target?: { emit: OpsNamespace['emit'] }): Promise<void> {
    if (!target && ops.sockets.size === 0) return;
    const snapshot = await clusterSnapshot();
    (target ?? ops.local).emit('ops:snapshot', snapshot);
  }

  const timer = setInterval(() => {
    void recheck()
      .catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'could not re-check the /ops sockets'))
      .then(report)
      .then(() => push());
  }, intervalMs);
  timer.unref();
  void report();

  return {
    close() {
      clearInterval(timer);
      forgetNode(redis, config.nodeId).catch(() => undefined);
      redis.del(nodeKey(config.nodeId)).catch(() => undefined);
      ops.local.disconnectSockets(true);
    },
  };
}
