/**
 * The nodes of this cluster, as seen in Redis: each node records itself every
 * second. The ops view lists the fresh ones; the chat sweeper uses "known to
 * this cluster, but silent" to tell a dead node from one of another cluster.
 */
import type { Redis } from '../redis.js';

export const NODES_KEY = 'nodes:seen';
/** members unseen for this long are forgotten */
const FORGET_MS = 24 * 3_600_000;

export async function recordNode(redis: Redis, nodeId: string, now = Date.now()): Promise<void> {
  await redis.multi().zadd(NODES_KEY, now, nodeId).zremrangebyscore(NODES_KEY, '-inf', now - FORGET_MS).exec();
}

/** Nodes seen within `withinMs`. */
export function freshNodes(redis: Redis, withinMs: number, now = Date.now()): Promise<string[]> {
  return redis.zrangebyscore(NODES_KEY, now - withinMs, '+inf');
}

/** When this cluster last saw the node (epoch ms), or null if it never did. */
export async function nodeLastSeen(redis: Redis, nodeId: string): Promise<number | null> {
  const score = await redis.zscore(NODES_KEY, nodeId);
  return score === null ? null : Number(score);
}

export async function forgetNode(redis: Redis, nodeId: string): Promise<void> {
  await redis.zrem(NODES_KEY, nodeId);
}
