/**
 * A stand-in for the API's prompt cache, so that the usage the offline model
 * reports has honest cache counts: the request is read in the API's order
 * (tools, system, messages), and the prefix up to each `cache_control`
 * breakpoint (or, with a top-level `cache_control`, up to the last block) is
 * remembered for `ttlMs`. A later request whose prefix up to a breakpoint is
 * the same, byte for byte, reads it from the cache; what lies between the
 * longest prefix read and the last breakpoint is written. Prefixes shorter
 * than `minTokens` are not cached, as the API does not cache them.
 */
import { createHash } from 'node:crypto';
import type { MessagesParams } from './replies.js';

export const CHARS_PER_TOKEN = 4;
export const tokensOf = (chars: number) => Math.max(1, Math.ceil(chars / CHARS_PER_TOKEN));

export interface PromptCacheOptions {
  /** how long a prefix stays cached after its last use; default 5 minutes, as the API's default */
  ttlMs?: number;
  /** shorter prefixes are never cached; default 1,024 tokens */
  minTokens?: number;
}

export interface InputUsage {
  /** tokens after the last breakpoint (or all of them when nothing is cached) */
  inputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
}

interface Segment {
  /** the segment's bytes, without its `cache_control` (moving a breakpoint does not change the prefix) */
  text: string;
  breakpoint: boolean;
}

type Loose = Record<string, unknown>;

function segmentOf(item: unknown): Segment {
  if (typeof item !== 'object' || item === null) return { text: JSON.stringify(item) ?? '', breakpoint: false };
  const { cache_control: marker, ...rest } = item as Loose;
  return { text: JSON.stringify(rest), breakpoint: marker !== undefined && marker !== null };
}

/** The request as the API reads it, in order: each tool, each system block, each message's blocks. */
export function segmentsOf(params: MessagesParams): Segment[] {
  const segments: Segment[] = [];
  const tools = (params as Loose)['tools'];
  if (Array.isArray(tools)) for (const tool of tools) segments.push(segmentOf(tool));
  if (typeof params.system === 'string') segments.push({ text: JSON.stringify(params.system), breakpoint: false });
  else if (params.system) for (const block of params.system) segments.push(segmentOf(block));
  for (const message of params.messages) {
    const role = JSON.stringify(message.role);
    if (typeof message.content === 'string') segments.push({ text: role + JSON.stringify(message.content), breakpoint: false });
    else message.content.forEach((block, i) => {
      const s = segmentOf(block);
      segments.push(i === 0 ? { ...s, text: role + s.text } : s);
    });
  }
  const automatic = (params as Loose)['cache_control'];
  const last = segments.at(-1);
  if (automatic !== undefined && automatic !== null && last) last.breakpoint = true;
  return segments;
}

/** Every input token of the request, by the same count the cache uses. */
export function inputTokensOf(params: MessagesParams): number {
  return tokensOf(segmentsOf(params).reduce((n, s) => n + s.text.length, 0));
}

export class PromptCache {
  private readonly entries = new Map<string, number>();
  private readonly ttlMs: number;
  private readonly minTokens: number;

  constructor(options: PromptCacheOptions = {}) {
    this.ttlMs = options.ttlMs ?? 300_000;
    this.minTokens = options.minTokens ?? 1024;
  }

  /** The request's input usage; remembers its prefixes (a read refreshes one, as the API does). */
  use(params: MessagesParams, now = Date.now()): InputUsage {
    const segments = segmentsOf(params);
    const total = tokensOf(segments.reduce((n, s) => n + s.text.length, 0));
    const hash = createHash('sha256');
    const breakpoints: { key: string; tokens: number }[] = [];
    let chars = 0;
    for (const segment of segments) {
      hash.update(segment.text);
      chars += segment.text.length;
      if (!segment.breakpoint) continue;
      const tokens = tokensOf(chars);
      if (tokens >= this.minTokens) breakpoints.push({ key: hash.copy().digest('hex'), tokens });
    }
    for (const [key, expires] of this.entries) if (expires <= now) this.entries.delete(key);
    const hit = breakpoints.findLast((b) => this.entries.has(b.key));
    const cacheReadTokens = hit?.tokens ?? 0;
    const cacheCreationTokens = (breakpoints.at(-1)?.tokens ?? 0) - cacheReadTokens;
    for (const b of breakpoints) this.entries.set(b.key, now + this.ttlMs);
    return { inputTokens: Math.max(0, total - cacheReadTokens - cacheCreationTokens), cacheReadTokens, cacheCreationTokens };
  }
}
