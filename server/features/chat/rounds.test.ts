import Anthropic from '@anthropic-ai/sdk';
import { describe, expect, it } from 'vitest';
import { cutOffText, harderBudget, isPromptTooLong, requestMessages } from './rounds.js';
import { trimHistory } from './prompt.js';

const apiError = (status: number, type: string, message: string) =>
  Anthropic.APIError.generate(status, { type: 'error', error: { type, message } }, undefined, new Headers());

describe('requestMessages', () => {
  it('leaves a history that ends with the user alone', () => {
    const history: Anthropic.MessageParam[] = [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hello  ' },
      { role: 'user', content: 'bye' },
    ];
    expect(requestMessages(history, [])).toEqual(history);
  });

  it('[CHAT-13] merges the answer being continued with its rounds, and trims the white space that ends the last assistant turn', () => {
    const history: Anthropic.MessageParam[] = [
      { role: 'user', content: 'tell me' },
      { role: 'assistant', content: 'Once upon ' },
    ];
    expect(requestMessages(history, [])).toEqual([history[0], { role: 'assistant', content: 'Once upon' }]);
    const paused: Anthropic.MessageParam = { role: 'assistant', content: [{ type: 'text', text: 'a time\n\n' }] };
    expect(requestMessages(history, [paused])).toEqual([
      history[0],
      { role: 'assistant', content: [{ type: 'text', text: 'Once upon ' }, { type: 'text', text: 'a time' }] },
    ]);
  });

  it('[CHAT-14] leaves out an assistant turn with no text left', () => {
    const history: Anthropic.MessageParam[] = [{ role: 'user', content: 'q' }];
    expect(requestMessages(history, [{ role: 'assistant', content: [{ type: 'text', text: '  \n' }] }])).toEqual(history);
    expect(requestMessages(history, [{ role: 'assistant', content: [] }])).toEqual(history);
  });

  it('keeps a tool round as it is: the assistant turn, then the user turn with the results', () => {
    const rounds: Anthropic.MessageParam[] = [
      { role: 'assistant', content: [{ type: 'text', text: 'On it. ' }, { type: 'tool_use', id: 't1', name: 'list_tasks', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: '[]' }] },
    ];
    expect(requestMessages([{ role: 'user', content: 'list' }], rounds)).toEqual([{ role: 'user', content: 'list' }, ...rounds]);
  });
});

describe('the retry of an over-long context (CHAT-14)', () => {
  it('halves what the history held, so the oldest turns go first', () => {
    const history = Array.from({ length: 10 }, (_, i) => ({ role: i % 2 ? ('assistant' as const) : ('user' as const), content: `${i}`.repeat(400) }));
    const sent = trimHistory(history);
    expect(sent).toHaveLength(10);
    const budget = harderBudget(sent);
    expect(budget).toBe(500);
    const again = trimHistory(history, budget);
    expect(again.length).toBeLessThan(sent.length);
    expect(again.at(-1)).toEqual(sent.at(-1));
    expect(again[0]!.role).toBe('user');
  });

  it('sends back only the text of a round cut off by the context window', () => {
    expect(cutOffText([{ type: 'text', text: 'partial' }, { type: 'tool_use', id: 't', name: 'list_tasks', input: {} }, { type: 'text', text: '' }])).toEqual([
      { type: 'text', text: 'partial' },
    ]);
  });

  it('knows the API\'s 400 for a prompt over the context window, and nothing else', () => {
    expect(isPromptTooLong(apiError(400, 'invalid_request_error', 'prompt is too long: 210000 tokens > 200000 maximum'))).toBe(true);
    expect(isPromptTooLong(apiError(400, 'invalid_request_error', 'messages: roles must alternate'))).toBe(false);
    expect(isPromptTooLong(apiError(529, 'overloaded_error', 'prompt is too long'))).toBe(false);
    expect(isPromptTooLong(new Error('prompt is too long'))).toBe(false);
  });
});
