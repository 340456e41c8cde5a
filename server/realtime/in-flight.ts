/**
 * Events a socket is still handling, so that closing it can wait for their
 * answers: a revocation caused by the socket's own event (`user:delete`,
 * `session:revoke`) must not close it before that event's ack has gone.
 */
import type { Socket } from 'socket.io';

const busy = new WeakMap<Socket, { count: number; idle: (() => void)[] }>();

/** Runs `work` as one of the socket's events in flight. */
export async function inFlight<R>(socket: Socket, work: () => Promise<R>): Promise<R> {
  let entry = busy.get(socket);
  if (!entry) busy.set(socket, (entry = { count: 0, idle: [] }));
  entry.count++;
  try {
    return await work();
  } finally {
    if (--entry.count === 0) for (const resolve of entry.idle.splice(0)) resolve();
  }
}

export const isBusy = (socket: Socket): boolean => (busy.get(socket)?.count ?? 0) > 0;

/** Resolves once the socket has no event in flight, or after `maxMs`. */
export function whenIdle(socket: Socket, maxMs: number): Promise<void> {
  const entry = busy.get(socket);
  if (!entry || entry.count === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, maxMs);
    entry.idle.push(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
