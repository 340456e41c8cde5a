/**
 * One round of a generation, read from the SDK's raw event stream
 * (`messages.create({ stream: true })`) rather than its `MessageStream` helper.
 * The helper rebuilds a message snapshot and emits several events for every
 * delta, and re-parses a tool call's partial JSON on each of its deltas, a
 * visible share of the server's CPU in the relay bench's profile. Here text goes straight to `onText`, a tool call's JSON
 * is parsed once when its block ends, and only what the next round and the
 * final message need is kept: the text, the tool calls (a server tool's call and
 * result too, so that a paused turn goes back whole, CHAT-13), the stop reason and the usage.
 */
import type Anthropic from '@anthropic-ai/sdk';

export interface RoundResult {
  /** the assistant's content, as it is sent back in the next round */
  content: Anthropic.ContentBlockParam[];
  /** the tool calls to run; `input` is the raw JSON text when it did not parse */
  toolUses: { id: string; name: string; input: unknown }[];
  stopReason: Anthropic.StopReason | null;
  inputTokens: number;
  outputTokens: number;
  /** the usage's cache_read_input_tokens and cache_creation_input_tokens, 0 when absent (CHAT-12) */
  cacheReadTokens: number;
  cacheCreationTokens: number;
}

/** The stream ended without `message_stop`: the answer was cut off. */
export class StreamCutError extends Error {
  constructor() {
    super('the upstream stream ended before message_stop');
    this.name = 'StreamCutError';
  }
}

type Block =
  | { type: 'text'; text: string }
  | { type: 'tool_use' | 'server_tool_use'; id: string; name: string; json: string }
  /** a block that arrives whole in its start event (a server tool's result) */
  | { type: 'whole'; block: Anthropic.ContentBlockParam }
  | { type: 'other' };

const count = (n: number | null | undefined, otherwise: number) => (typeof n === 'number' ? n : otherwise);

/**
 * Reads one round's events. `onText` gets each text delta as it arrives;
 * `onEvent` is called for every event (the idle watchdog).
 */
export async function readRound(events: AsyncIterable<Anthropic.RawMessageStreamEvent>, onText: (text: string) => void, onEvent: () => void): Promise<RoundResult> {
  const blocks: Block[] = [];
  let stopReason: Anthropic.StopReason | null = null;
  let inputTokens = 0;
  let outputTokens = 0;
  let cacheReadTokens = 0;
  let cacheCreationTokens = 0;
  let stopped = false;
  for await (const event of events) {
    onEvent();
    switch (event.type) {
      case 'content_block_delta': {
        const block = blocks[event.index];
        if (event.delta.type === 'text_delta') {
          if (block?.type === 'text') block.text += event.delta.text;
          onText(event.delta.text);
        } else if (event.delta.type === 'input_json_delta' && (block?.type === 'tool_use' || block?.type === 'server_tool_use')) {
          block.json += event.delta.partial_json;
        }
        break;
      }
      case 'content_block_start': {
        const b = event.content_block;
        if (b.type === 'text') {
          blocks[event.index] = { type: 'text', text: b.text };
          if (b.text) onText(b.text);
        } else if (b.type === 'tool_use' || b.type === 'server_tool_use') blocks[event.index] = { type: b.type, id: b.id, name: b.name, json: '' };
        else if (b.type.endsWith('_tool_result')) blocks[event.index] = { type: 'whole', block: b as unknown as Anthropic.ContentBlockParam };
        else blocks[event.index] = { type: 'other' };
        break;
      }
      case 'message_start': {
        const { usage } = event.message;
        inputTokens = usage.input_tokens;
        outputTokens = usage.output_tokens;
        cacheReadTokens = count(usage.cache_read_input_tokens, 0);
        cacheCreationTokens = count(usage.cache_creation_input_tokens, 0);
        break;
      }
      case 'message_delta': {
        // cumulative counts; the input ones only when the API repeats them here
        const { usage } = event;
        stopReason = event.delta.stop_reason ?? stopReason;
        outputTokens = usage.output_tokens;
        inputTokens = count(usage.input_tokens, inputTokens);
        cacheReadTokens = count(usage.cache_read_input_tokens, cacheReadTokens);
        cacheCreationTokens = count(usage.cache_creation_input_tokens, cacheCreationTokens);
        break;
      }
      case 'message_stop':
        stopped = true;
        break;
      default:
        break;
    }
  }
  if (!stopped) throw new StreamCutError();
  const content: Anthropic.ContentBlockParam[] = [];
  const toolUses: RoundResult['toolUses'] = [];
  for (const block of blocks) {
    if (block?.type === 'text') {
      if (block.text) content.push({ type: 'text', text: block.text });
    } else if (block?.type === 'tool_use') {
      const input = parseInput(block.json);
      content.push({ type: 'tool_use', id: block.id, name: block.name, input: input.ok ? input.value : {} });
      toolUses.push({ id: block.id, name: block.name, input: input.ok ? input.value : block.json });
    } else if (block?.type === 'server_tool_use') {
      // run by the API itself: sent back as it came, never run here
      const input = parseInput(block.json);
      content.push({ type: 'server_tool_use', id: block.id, name: block.name, input: input.ok ? input.value : {} } as Anthropic.ContentBlockParam);
    } else if (block?.type === 'whole') content.push(block.block);
  }
  return { content, toolUses, stopReason, inputTokens, outputTokens, cacheReadTokens, cacheCreationTokens };
}

/** A tool call's input: `{}` when it sent none (as the API does for tools without parameters). */
function parseInput(json: string): { ok: true; value: unknown } | { ok: false } {
  if (!json) return { ok: true, value: {} };
  try {
    return { ok: true, value: JSON.parse(json) };
  } catch {
    return { ok: false };
  }
}
