/** Real socket.io-client connections for tests: typed, with `request()` returning the ack. */
import { io, type Socket } from 'socket.io-client';
import type { Ack } from '../../shared/errors.js';
import type { AckData, ClientToServerEvents, RequestEvent, RequestPayload, ServerToClientEvents } from '../../shared/events.js';

export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export interface Tab {
  socket: ClientSocket;
  /** every server push received, in order */
  received: { event: string; data: any; at: number }[];
  request<E extends RequestEvent>(event: E, payload: RequestPayload<E>, timeoutMs?: number): Promise<Ack<AckData[E]>>;
  /** like request, but throws unless ok, and returns the data */
  call<E extends RequestEvent>(event: E, payload: RequestPayload<E>): Promise<AckData[E]>;
  waitFor(event: string, match?: (data: any) => boolean, timeoutMs?: number): Promise<any>;
  close(): void;
}

export function connect(url: string, token: string | undefined, opts: { origin?: string; reconnection?: boolean } = {}): Tab {
  const socket: ClientSocket = io(url, {
    transports: ['websocket'],
    auth: token === undefined ? {} : { token },
    reconnection: opts.reconnection ?? false,
    forceNew: true,
    timeout: 5_000,
    extraHeaders: opts.origin ? { origin: opts.origin } : undefined,
  });
  const received: Tab['received'] = [];
  const waiters = new Set<{ event: string; match: (d: any) => boolean; resolve: (d: any) => void }>();
  socket.onAny((event: string, data: unknown) => {
    received.push({ event, data, at: Date.now() });
    for (const w of waiters) {
      if (w.event === event && w.match(data)) {
        waiters.delete(w);
        w.resolve(data);
      }
    }
  });
  const tab: Tab = {
    socket,
    received,
    request(event, payload, timeoutMs = 10_000) {
      return (socket.timeout(timeoutMs) as any).emitWithAck(event, payload);
    },
    async call(event, payload) {
      const res = await tab.request(event, payload);
      if (!res.ok) throw new Error(`${event} failed: ${JSON.stringify(res.error)}`);
      return res.data;
    },
    waitFor(event, match = () => true, timeoutMs = 10_000) {
      const existing = received.find((r) => r.event === event && match(r.data));
      if (existing) return Promise.resolve(existing.data);
      return new Promise((resolve, reject) => {
        const w = { event, match, resolve };
        waiters.add(w);
        setTimeout(() => {
          if (waiters.delete(w)) reject(new Error(`no ${event} within ${timeoutMs} ms`));
        }, timeoutMs);
      });
    },
    close: () => {
      socket.disconnect();
    },
  };
  return tab;
}

/** Connects and resolves with the tab and its `session:ready`, or rejects with the connect_error message. */
export async function connectReady(url: string, token: string | undefined, opts: { origin?: string; reconnection?: boolean } = {}): Promise<Tab & { ready: any }> {
  const tab = connect(url, token, opts);
  const ready = await new Promise((resolve, reject) => {
    tab.socket.once('connect_error', (err) => reject(err));
    tab.waitFor('session:ready').then(resolve, reject);
  });
  return Object.assign(tab, { ready });
}

/** The message of the connect_error a connection attempt ends with. */
export async function connectError(url: string, token: unknown, opts: { origin?: string } = {}): Promise<string> {
  const tab = connect(url, token as string, opts);
  try {
    return await new Promise<string>((resolve, reject) => {
      tab.socket.once('connect_error', (err) => resolve(err.message));
      tab.socket.once('connect', () => reject(new Error('connected')));
    });
  } finally {
    tab.close();
  }
}

export const closed = (tab: Tab, timeoutMs = 5_000) =>
  new Promise<string>((resolve, reject) => {
    if (!tab.socket.connected) return resolve('already');
    const t = setTimeout(() => reject(new Error('socket still open')), timeoutMs);
    tab.socket.once('disconnect', (reason) => {
      clearTimeout(t);
      resolve(reason);
    });
  });

/** Collects tabs so a test file can close them all at the end. */
export function tabTracker() {
  const tabs: Tab[] = [];
  return {
    track: <T extends Tab>(tab: T): T => {
      tabs.push(tab);
      return tab;
    },
    closeAll: () => {
      for (const t of tabs.splice(0)) t.close();
    },
  };
}

/** Resolves with how long the socket took to close (0 if it already had), or rejects after `ms`. */
export const closedWithin = (socket: Socket, ms = 2_500): Promise<number> =>
  new Promise<number>((resolve, reject) => {
    const started = Date.now();
    if (!socket.connected) return resolve(0);
    const timer = setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms);
    socket.once('disconnect', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
