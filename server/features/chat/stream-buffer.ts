/**
 * The text so far of a streaming answer, kept in Redis for tabs that ask
 * `chat:history` mid-stream (CHAT-3) and for ending a message whose node died
 * (CHAT-7). Deltas are a list whose index is their `seq`: appending one is
 * O(1) and carries only the new text (the whole buffer used to be rewritten on
 * every delta), and the content and `lastSeq` read together can never
 * disagree. Tool calls, rare, are one JSON value beside it.
 */
import type { ToolCall } from '../../../shared/schemas/chat.js';
import type { Redis } from '../../redis.js';

/** The text so far of a streaming message. */
export interface StreamBuffer {
  content: string;
  lastSeq: number | null;
  toolCalls: ToolCall[];
}

/** Buffers outlive their generation by this long at most (refreshed by its heartbeat). */
export const BUFFER_TTL_SECONDS = 600;

const deltasKey = (messageId: string) => `chat:buf:${messageId}:deltas`;
const toolsKey = (messageId: string) => `chat:buf:${messageId}:tools`;
/** Every key of a message's buffer, for deleting them. */
export const bufferKeys = (messageId: string) => [deltasKey(messageId), toolsKey(messageId)];
/** The generating node's heartbeat for a streaming message (CHAT-7). */
export const heartbeatKey = (messageId: string) => `chat:hb:${messageId}`;

export interface DeltaAppend {
  messageId: string;
  seq: number;
  text: string;
}

/**
 * Appends each delta `seq` to its message's list (`seq` = its index there),
 * the deltas of every stream in one command: one shared flush sends hundreds.
 * A list's first delta also sets its expiry. Resolves, per append, whether the
 * list is in step with `seq`; false (also when Redis fails) means an append
 * was lost and the caller rewrites that list whole.
 */
export async function appendDeltas(redis: Redis, appends: readonly DeltaAppend[]): Promise<boolean[]> {
  const keys = appends.map((a) => deltasKey(a.messageId));
  const args: (string | number)[] = [BUFFER_TTL_SECONDS];
  for (const a of appends) args.push(a.text, a.seq + 1);
  try {
    const lengths = (await (redis as WithAppend).samAppendDeltas(keys.length, ...keys, ...args)) as number[];
    return appends.map((_, i) => lengths[i] === 1);
  } catch {
    return appends.map(() => false);
  }
}

// KEYS: the lists; ARGV[1]: the expiry; then per list its text and its expected length. Returns 1 or 0 per list.
const appendScript = `
local out = {}
for i = 1, #KEYS do
  local n = redis.call('RPUSH', KEYS[i], ARGV[2 * i])
  if n == 1 then redis.call('EXPIRE', KEYS[i], ARGV[1]) end
  out[i] = (n == tonumber(ARGV[2 * i + 1])) and 1 or 0
end
return out`;

/**
 * The scripts of the stream buffer, defined on the command client when it is
 * made (`createCommandClient`): run by EVALSHA, loaded again after a Redis
 * restart. Defined with the client, before any command, so that every
 * pipeline of the client knows them.
 */
export const streamScripts = { samAppendDeltas: { lua: appendScript } };

type WithAppend = Redis & { samAppendDeltas(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<unknown> };

/** Replaces the list with every delta so far (read synchronously: the caller may go on appending to `deltas`). */
export async function rewriteDeltas(redis: Redis, messageId: string, deltas: readonly string[]): Promise<boolean> {
  const key = deltasKey(messageId);
  try {
    const multi = redis.multi().del(key);
    if (deltas.length > 0) multi.rpush(key, ...deltas).expire(key, BUFFER_TTL_SECONDS);
    await multi.exec();
    return true;
  } catch {
    return false;
  }
}

export function saveToolCalls(redis: Redis, messageId: string, toolCalls: ToolCall[]): Promise<unknown> {
  return redis.set(toolsKey(messageId), JSON.stringify(toolCalls), 'EX', BUFFER_TTL_SECONDS);
}

/**
 * The heartbeat of the streams a node generates (CHAT-7): each one's heartbeat
 * key set to `nodeId` for `ttlMs`, and its buffer's expiry pushed back, for
 * every stream in one round trip (a pipeline, not a transaction: each key
 * stands on its own).
 */
export function beat(redis: Redis, nodeId: string, ttlMs: number, messageIds: Iterable<string>): Promise<unknown> {
  const pipeline = redis.pipeline();
  for (const id of messageIds) {
    pipeline.set(heartbeatKey(id), nodeId, 'PX', ttlMs).expire(deltasKey(id), BUFFER_TTL_SECONDS).expire(toolsKey(id), BUFFER_TTL_SECONDS);
  }
  return pipeline.exec();
}

/**
 * A new generation's first heartbeat: the key alone, in one command, since a buffer does not exist yet (a
 * continuation's is written whole, with its expiry, by `rewriteDeltas`).
 */
export function firstBeat(redis: Redis, nodeId: string, ttlMs: number, messageId: string): Promise<unknown> {
  return redis.set(heartbeatKey(messageId), nodeId, 'PX', ttlMs);
}

/**
 * The buffer, or undefined when nothing was streamed yet, it is gone, or Redis
 * cannot be read now (callers then fall back to what PostgreSQL holds).
 */
export async function readBuffer(redis: Redis, messageId: string): Promise<StreamBuffer | undefined> {
  let results;
  try {
    results = await redis.multi().lrange(deltasKey(messageId), 0, -1).get(toolsKey(messageId)).exec();
  } catch {
    return undefined;
  }
  const deltas = (results?.[0]?.[1] ?? []) as string[];
  const tools = (results?.[1]?.[1] ?? null) as string | null;
  if (deltas.length === 0 && tools === null) return undefined;
  return {
    content: deltas.join(''),
    lastSeq: deltas.length > 0 ? deltas.length - 1 : null,
    toolCalls: tools ? (JSON.parse(tools) as ToolCall[]) : [],
  };
}
