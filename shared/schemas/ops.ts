import { z } from 'zod';
import { id } from './common.js';

export interface NodeSnapshot {
  id: string;
  startedAt: string;
  sockets: number;
  users: number;
  eventsPerSecond: number;
  eventP50Ms: number;
  eventP99Ms: number;
  handshakeFailures: number;
  rateLimited: number;
  activeStreams: number;
  outputTokensPerSecond: number;
  /** CHAT-12: prompt tokens read from the prompt cache, and all prompt tokens, since the node started */
  cacheReadTokens: number;
  promptTokens: number;
  /** cacheReadTokens / promptTokens, null before the first answer */
  cacheHitRatio: number | null;
  rssBytes: number;
  eventLoopLagMs: number;
}

export interface OpsSnapshot {
  at: string;
  nodes: NodeSnapshot[];
  totals: {
    sockets: number;
    users: number;
    eventsPerSecond: number;
    handshakeFailures: number;
    rateLimited: number;
    activeStreams: number;
    outputTokensPerSecond: number;
    cacheReadTokens: number;
    promptTokens: number;
    cacheHitRatio: number | null;
    rssBytes: number;
  };
}

export interface OnlineUser {
  userId: string;
  email: string;
  sockets: number;
  sessions: number;
}

export const opsUsers = z.strictObject({});
export const opsUserAction = z.strictObject({ userId: id });
