/**
 * What one answer's upstream requests hold beyond the history (CHAT-13,
 * CHAT-14): the rounds of the answer so far (tool calls and their results, a
 * paused turn sent back), an assistant turn at the end that the model goes on
 * from (a `chat:continue`, a paused turn, the retry of an over-long context),
 * and how hard the history is trimmed for that retry.
 */
import Anthropic from '@anthropic-ai/sdk';
import { estimateTokens } from './prompt.js';

/** A paused turn (`pause_turn`) is sent back to go on at most this many times in one answer. */
export const MAX_PAUSE_CONTINUATIONS = 5;

type Block = Anthropic.ContentBlockParam;
/** A user or assistant turn (the SDK's MessageParam also admits a system one, which Sam never sends). */
type Turn = { role: 'user' | 'assistant'; content: string | Block[] };

const blocksOf = (content: string | readonly Block[]): Block[] => (typeof content === 'string' ? (content ? [{ type: 'text', text: content }] : []) : [...content]);

/**
 * The messages of a request: the history, then the answer's rounds so far,
 * two turns of one role in a row merged into one. A request that ends with an
 * assistant turn asks the model to go on from it: the API refuses such a turn
 * when it ends with white space, so that is trimmed (the model's next text
 * follows what the user already has), and an empty one is left out.
 */
export function requestMessages(history: readonly Anthropic.MessageParam[], rounds: readonly Anthropic.MessageParam[]): Anthropic.MessageParam[] {
  const out: Turn[] = [];
  for (const m of [...history, ...rounds] as Turn[]) {
    const last = out.at(-1);
    if (last && last.role === m.role) last.content = [...blocksOf(last.content), ...blocksOf(m.content)];
    else out.push({ role: m.role, content: m.content });
  }
  const last = out.at(-1);
  if (last?.role === 'assistant') {
    const content = blocksOf(last.content).filter((b) => b.type !== 'text' || b.text !== '');
    const end = content.at(-1);
    if (end?.type === 'text') {
      const text = end.text.trimEnd();
      if (text) content[content.length - 1] = { ...end, text };
      else content.pop();
    }
    if (content.length === 0) out.pop();
    else last.content = typeof last.content === 'string' && content.length === 1 && content[0]!.type === 'text' ? content[0]!.text : content;
  }
  return out as Anthropic.MessageParam[];
}

/** The part of a round cut off by the context window that goes back for the retry: its text (a tool call cut short is not run). */
export function cutOffText(content: readonly Block[]): Block[] {
  return content.filter((b) => b.type === 'text' && b.text !== '');
}

/** The history's budget for the one retry of an over-long context (CHAT-14): half of what the history that was sent held. */
export function harderBudget(sent: readonly Anthropic.MessageParam[]): number {
  let tokens = 0;
  for (const m of sent as Turn[]) for (const b of blocksOf(m.content)) if (b.type === 'text') tokens += estimateTokens(b.text);
  return Math.floor(tokens / 2);
}

/** Whether an upstream failure is the API's 400 saying the prompt is longer than the model's context window (CHAT-14). */
export function isPromptTooLong(err: unknown): boolean {
  return err instanceof Anthropic.APIError && err.status === 400 && err.type === 'invalid_request_error' && /prompt is too long/i.test(err.apiMessage ?? err.message);
}
