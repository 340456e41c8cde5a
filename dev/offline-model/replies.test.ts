import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { taskLine } from '../../server/features/chat/prompt.js';
import type { Task } from '../../shared/schemas/tasks.js';
import { findTask, offlineReply, parseCommand, parseTaskLines, type MessagesParams } from './replies.js';

const TASK_ID = randomUUID();
const OTHER_ID = randomUUID();
const SYSTEM = [
  'You are Sam, a personal assistant.',
  'Open tasks:',
  `- [${OTHER_ID}] "buy milk and eggs" — not started, due 2030-01-02`,
  `- [${TASK_ID}] buy milk`,
  `- [${randomUUID()}] "call \\"Mom\\""`,
].join('\n');

const ask = (content: MessagesParams['messages'][number]['content'], system?: string): MessagesParams => ({
  model: 'm',
  max_tokens: 100,
  messages: [{ role: 'user', content }],
  ...(system === undefined ? {} : { system }),
});

describe('the phrases it acts on', () => {
  it.each([
    ['add task: buy milk', { tool: 'create_task', title: 'buy milk' }],
    ['Add task Buy Milk.', { tool: 'create_task', title: 'Buy Milk' }],
    ['add task: "file  taxes"', { tool: 'create_task', title: 'file taxes' }],
    ['complete "buy milk"', { tool: 'complete_task', title: 'buy milk' }],
    ['delete buy milk!', { tool: 'delete_task', title: 'buy milk' }],
    ['What should I do next?', { tool: 'next_task' }],
    ['list my tasks', { tool: 'list_tasks' }],
    ['show my waiting tasks', { tool: 'list_tasks', view: 'waiting' }],
    ['tell me a joke', undefined],
    ['add task:', undefined],
  ])('%s', (text, expected) => {
    expect(parseCommand(text)).toEqual(expected);
  });

  it('deletes by a case-insensitive substring of a listed title', () => {
    expect(offlineReply(ask('Delete MILK AND', SYSTEM))).toEqual({
      kind: 'tool_use',
      name: 'delete_task',
      input: { id: OTHER_ID },
      text: 'Deleting "buy milk and eggs".',
    });
  });

  it('says so when no listed task matches', () => {
    expect(offlineReply(ask('complete walk the dog', SYSTEM))).toEqual({ kind: 'text', text: expect.stringContaining('"walk the dog"') });
  });
});

describe('task lines in the system prompt', () => {
  it('reads quoted and bare titles, and finds by exact title, then case, then the shortest containing one', () => {
    const tasks = parseTaskLines(SYSTEM);
    expect(tasks.map((t) => t.title)).toEqual(['buy milk and eggs', 'buy milk', 'call "Mom"']);
    expect(findTask(tasks, 'buy milk')?.id).toBe(TASK_ID);
    expect(findTask(tasks, 'BUY MILK')?.id).toBe(TASK_ID);
    expect(findTask(tasks, 'eggs')?.id).toBe(OTHER_ID);
    expect(findTask(tasks, 'walk')).toBeUndefined();
  });

  it('[CHAT-8] reads the task lines Sam\'s system prompt writes', () => {
    const t: Task = {
      id: '00000000-0000-4000-8000-00000000abcd',
      title: 'Pay "rent" — now',
      description: '',
      deadline: '2026-12-01',
      intensity: 3,
      status: 'not_started',
      project: 'Home',
      waitingOn: null,
      dependencies: [],
      recurrence: null,
      version: 1,
      seq: 1,
      createdAt: '2026-11-29T10:00:00.000Z',
      updatedAt: '2026-11-29T10:00:00.000Z',
      completedAt: null,
      deletedAt: null,
    };
    expect(parseTaskLines(`Open tasks:\n${taskLine(t)}\n`)).toEqual([{ id: t.id, title: 'Pay "rent" — now' }]);
  });
});

describe('tool results', () => {
  it('summarises list, next and failed results as Sam\'s tools return them', () => {
    const reply = offlineReply({
      model: 'm',
      max_tokens: 100,
      messages: [
        { role: 'user', content: 'list my tasks' },
        {
          role: 'assistant',
          content: [
            { type: 'tool_use', id: 'toolu_list', name: 'list_tasks', input: {} },
            { type: 'tool_use', id: 'toolu_next', name: 'next_task', input: {} },
            { type: 'tool_use', id: 'toolu_none', name: 'next_task', input: {} },
            { type: 'tool_use', id: 'toolu_fail', name: 'complete_task', input: { id: 'nope' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_list', content: JSON.stringify({ tasks: [{ title: 'a' }, { title: 'b' }] }) },
            { type: 'tool_result', tool_use_id: 'toolu_next', content: JSON.stringify({ task: { title: 'b' }, score: 3 }) },
            { type: 'tool_result', tool_use_id: 'toolu_none', content: JSON.stringify({ task: null, score: null }) },
            { type: 'tool_result', tool_use_id: 'toolu_fail', is_error: true, content: JSON.stringify({ code: 'NOT_FOUND', message: 'Task not found' }) },
          ],
        },
      ],
    });
    expect(reply).toEqual({
      kind: 'text',
      text: [
        'Here are your 2 tasks:\n\n- a\n- b',
        "I'd do **b** next.",
        'Nothing is waiting for you right now. Enjoy the break.',
        "That didn't work: Task not found.",
      ].join('\n\n'),
    });
  });
});
