/**
 * The live cluster view for admins (PROTOCOL §7): the `/ops` socket while the
 * page is open, a rolling window of snapshots for the charts, the users online
 * and the admin actions on them.
 */
import type { WireError } from '$shared/errors';
import type { NodeSnapshot, OnlineUser, OpsSnapshot } from '$shared/schemas/ops';
import { describeError } from '../../lib/errors';
import type { Session } from '../../lib/session.svelte';
import type { Toasts } from '../../lib/toasts.svelte';
import { createOpsSocket, opsRequest, type OpsSocket } from './ops-socket';

export type OpsStatus = 'idle' | 'connecting' | 'live' | 'reconnecting' | 'forbidden' | 'offline';

/** How much history the charts keep, seconds. */
export const windowSeconds = 180;

/** A node's figures, with its running failure counts turned into rates. */
export interface NodeSample extends NodeSnapshot {
  /** per second over the last interval; null for a node's first sample */
  handshakeFailuresPerSecond: number | null;
  rateLimitedPerSecond: number | null;
}

export type Totals = OpsSnapshot['totals'] & {
  handshakeFailuresPerSecond: number | null;
  rateLimitedPerSecond: number | null;
};

export interface Sample {
  /** seconds since epoch, server clock */
  t: number;
  nodes: NodeSample[];
  totals: Totals;
}

interface Counters {
  /** seconds since epoch */
  t: number;
  startedAt: string;
  handshakeFailures: number;
  rateLimited: number;
  handshakeRate: number | null;
  limitedRate: number | null;
}

/** Shortest interval a rate is measured over; a closer pair (the push on connect) keeps the last rate. */
const minRateInterval = 0.25;

function rate(now: number, before: number, dt: number): number {
  return Math.max(0, (now - before) / dt);
}

function sumOrNull(values: (number | null)[]): number | null {
  const known = values.filter((v): v is number => v !== null);
  return known.length === 0 ? null : known.reduce((s, v) => s + v, 0);
}

export class OpsStore {
  #status = $state<OpsStatus>('idle');
  #samples = $state.raw<Sample[]>([]);
  #users = $state.raw<OnlineUser[]>([]);
  #usersState = $state<'idle' | 'loading' | 'ready' | 'error'>('idle');
  /** ms since epoch of the last users list */
  #usersAt = $state<number | null>(null);
  #busy = $state<string | null>(null);

  #socket: OpsSocket | null = null;
  #counters = new Map<string, Counters>();
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #attempt = 0;
  #authFailures = 0;
  #offToken: (() => void) | null = null;

  constructor(
    private readonly session: Session,
    private readonly toasts: Toasts,
  ) {}

  get status(): OpsStatus {
    return this.#status;
  }
  get live(): boolean {
    return this.#status === 'live';
  }
  /** oldest first, at most `windowSeconds` long */
  get samples(): Sample[] {
    return this.#samples;
  }
  get latest(): Sample | null {
    return this.#samples.at(-1) ?? null;
  }
  get users(): OnlineUser[] {
    return this.#users;
  }
  get usersState(): 'idle' | 'loading' | 'ready' | 'error' {
    return this.#usersState;
  }
  get usersAt(): number | null {
    return this.#usersAt;
  }
  /** which action is running (`disconnect:<id>`, `revoke:<id>`), to disable its buttons */
  get busy(): string | null {
    return this.#busy;
  }

  start(): void {
    if (this.#socket) return;
    const socket = createOpsSocket(() => this.session.token);
    this.#socket = socket;
    socket.on('connect', () => {
      this.#attempt = 0;
      this.#authFailures = 0;
      this.#status = 'live';
      void this.loadUsers();
    });
    socket.on('ops:snapshot', (snapshot) => {
      if (this.#socket === socket) this.#add(snapshot);
    });
    // An operator revoked the role: nothing to come back to. A revoked session is the app socket's to handle.
    socket.on('session:revoked', ({ reason }) => {
      if (this.#socket !== socket) return;
      if (reason === 'role_changed') void this.#refused('FORBIDDEN');
      else this.stop();
    });
    socket.on('disconnect', (reason) => {
      if (this.#socket !== socket) return;
      this.#status = 'reconnecting';
      // The server closes an admin view when its token expires: come back at once with the current one.
      if (reason === 'io server disconnect') this.#scheduleReconnect(this.#attempt === 0 ? 0 : undefined);
    });
    socket.on('connect_error', (err) => {
      if (this.#socket !== socket) return;
      this.#status = 'reconnecting';
      if (socket.active) return; // a transport failure: the manager retries with backoff
      void this.#refused(err.message);
    });
    // A new token (a refresh, here or in another tab) is what a refused handshake waits for.
    this.#offToken = this.session.onToken(() => {
      if (this.#socket === socket && !socket.connected && !socket.active && this.#status !== 'forbidden') this.#scheduleReconnect(0);
    });
    this.#status = 'connecting';
    socket.connect();
  }

  /** Closes the socket: the page is left or the user signed out. */
  stop(): void {
    clearTimeout(this.#retryTimer);
    this.#offToken?.();
    this.#offToken = null;
    const socket = this.#socket;
    this.#socket = null;
    socket?.removeAllListeners();
    socket?.disconnect();
    if (this.#status !== 'forbidden') this.#status = 'idle';
  }

  async loadUsers(): Promise<void> {
    this.#usersState = 'loading';
    const res = await opsRequest(this.#socket, 'ops:users', {});
    if (res.ok) {
      this.#users = res.data.users;
      this.#usersAt = Date.now();
      this.#usersState = 'ready';
    } else {
      this.#usersState = 'error';
      this.toasts.show(`Could not list the users online: ${describeError(res.error)}`, 'error');
    }
  }

  async disconnectUser(user: OnlineUser): Promise<void> {
    await this.#act(`disconnect:${user.userId}`, async () => {
      const res = await opsRequest(this.#socket, 'ops:disconnect-user', { userId: user.userId });
      if (!res.ok) return res.error;
      const n = res.data.sockets;
      this.toasts.show(`Disconnected ${n} socket${n === 1 ? '' : 's'} of ${user.email || user.userId}.`, 'success');
      return null;
    }, 'Could not disconnect');
  }

  async revokeUser(user: OnlineUser): Promise<void> {
    await this.#act(`revoke:${user.userId}`, async () => {
      const res = await opsRequest(this.#socket, 'ops:revoke-user', { userId: user.userId });
      if (!res.ok) return res.error;
      const n = res.data.sessions;
      this.toasts.show(`Revoked ${n} session${n === 1 ? '' : 's'} of ${user.email || user.userId}.`, 'success');
      return null;
    }, 'Could not revoke the sessions');
  }

  async #act(key: string, work: () => Promise<WireError | null>, failure: string): Promise<void> {
    if (this.#busy) return;
    this.#busy = key;
    try {
      const err = await work();
      if (err) this.toasts.show(`${failure}: ${describeError(err)}`, 'error');
      else await this.loadUsers();
    } finally {
      this.#busy = null;
    }
  }

  #add(snapshot: OpsSnapshot): void {
    const t = Date.parse(snapshot.at) / 1000;
    const last = this.#samples.at(-1);
    if (!Number.isFinite(t) || (last && t <= last.t)) return;
    const nodes = snapshot.nodes.map((node) => this.#withRates(node, t));
    const seen = new Set(nodes.map((n) => n.id));
    for (const id of this.#counters.keys()) if (!seen.has(id)) this.#counters.delete(id);
    const sample: Sample = {
      t,
      nodes,
      totals: {
        ...snapshot.totals,
        handshakeFailuresPerSecond: sumOrNull(nodes.map((n) => n.handshakeFailuresPerSecond)),
        rateLimitedPerSecond: sumOrNull(nodes.map((n) => n.rateLimitedPerSecond)),
      },
    };
    const from = t - windowSeconds;
    const kept = this.#samples.filter((s) => s.t >= from);
    kept.push(sample);
    this.#samples = kept;
  }

  #withRates(node: NodeSnapshot, t: number): NodeSample {
    const before = this.#counters.get(node.id);
    let handshakeRate: number | null = null;
    let limitedRate: number | null = null;
    // A restarted node starts its counts again: no rate across the restart.
    if (before && before.startedAt === node.startedAt) {
      const dt = t - before.t;
      if (dt < minRateInterval) {
        handshakeRate = before.handshakeRate;
        limitedRate = before.limitedRate;
      } else {
        handshakeRate = rate(node.handshakeFailures, before.handshakeFailures, dt);
        limitedRate = rate(node.rateLimited, before.rateLimited, dt);
      }
    }
    const keepTime = before && before.startedAt === node.startedAt && t - before.t < minRateInterval;
    this.#counters.set(node.id, {
      t: keepTime ? before.t : t,
      startedAt: node.startedAt,
      handshakeFailures: keepTime ? before.handshakeFailures : node.handshakeFailures,
      rateLimited: keepTime ? before.rateLimited : node.rateLimited,
      handshakeRate,
      limitedRate,
    });
    return { ...node, handshakeFailuresPerSecond: handshakeRate, rateLimitedPerSecond: limitedRate };
  }

  async #refused(reason: string): Promise<void> {
    if (reason === 'FORBIDDEN') {
      // Not an admin (any more): nothing to retry.
      this.#status = 'forbidden';
      this.stop();
      return;
    }
    if (reason === 'TOKEN_REVOKED') {
      // The app's own socket hears this too and signs the tab out.
      this.#status = 'offline';
      return;
    }
    if (reason === 'TOKEN_EXPIRED' || reason === 'UNAUTHENTICATED') {
      this.#authFailures += 1;
      if (this.#authFailures > 3) {
        this.#status = 'offline';
        return;
      }
      const ok = await this.session.refresh({ force: true });
      if (!ok && this.session.status !== 'authenticated') return;
      this.#scheduleReconnect(0);
      return;
    }
    this.#scheduleReconnect();
  }

  #scheduleReconnect(delayMs?: number): void {
    clearTimeout(this.#retryTimer);
    const backoff = Math.min(15_000, 500 * 2 ** this.#attempt) * (0.5 + Math.random());
    this.#attempt = Math.min(this.#attempt + 1, 10);
    this.#retryTimer = setTimeout(() => void this.#connectNow(), delayMs ?? backoff);
  }

  async #connectNow(): Promise<void> {
    const socket = this.#socket;
    if (!socket || socket.connected || socket.active) return;
    await this.session.ensureFreshToken();
    if (this.#socket !== socket || socket.connected || socket.active || this.session.status !== 'authenticated') return;
    this.#status = 'connecting';
    socket.connect();
  }
}
