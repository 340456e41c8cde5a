import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildSystemPrompt, systemText, taskLine } from '../../server/features/chat/prompt.js';
import type { Task } from '../../shared/schemas/tasks.js';
import { findTask, offlineReply, parseClock, parseCommand, parseTaskLines, type MessagesParams, type Reply } from './replies.js';

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
    ['remind me to call Bob in 20 minutes', { tool: 'remind', title: 'call Bob', when: { kind: 'in', minutes: 20 } }],
    ['remind me to "meet at 5" at 17:30', { tool: 'remind', title: 'meet at 5', when: { kind: 'at', hour: 17, minute: 30, tomorrow: false } }],
    ['remind me to call Bob tomorrow at 9', { tool: 'remind', title: 'call Bob', when: { kind: 'at', hour: 9, minute: 0, tomorrow: true } }],
    ['move my reminder for call Bob to tomorrow 7pm', { tool: 'move_reminder', title: 'call Bob', when: { kind: 'at', hour: 19, minute: 0, tomorrow: true } }],
    ['delete the reminder of call Bob', { tool: 'clear_reminder', title: 'call Bob' }],
    ['search my history for "dentist appointment"', { tool: 'search_history', query: 'dentist appointment' }],
    ['What did I say about the garden?', { tool: 'search_history', query: 'the garden' }],
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
      remindAt: null,
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

describe('reminders', () => {
  const BOB_ID = randomUUID();
  /** 17:10:30 on Tuesday 1 December 2026 in Tokyo (UTC+9, no DST): far from UTC, so a UTC reading would be hours off. */
  const NOW = new Date('2026-12-01T08:10:30.000Z');
  const bob: Task = {
    id: BOB_ID,
    title: 'call Bob',
    description: '',
    deadline: null,
    intensity: 2,
    status: 'not_started',
    project: null,
    waitingOn: null,
    dependencies: [],
    recurrence: null,
    version: 1,
    seq: 1,
    createdAt: NOW.toISOString(),
    updatedAt: NOW.toISOString(),
    completedAt: null,
    deletedAt: null,
    remindAt: '2026-12-01T09:00:00.000Z',
  };
  const system = (now: Date, timezone = 'Asia/Tokyo') => systemText(buildSystemPrompt({ fullName: 'Ada', timezone }, [bob], now));
  const say = (text: string, now = NOW, timezone = 'Asia/Tokyo') => offlineReply(ask(text, system(now, timezone)));
  const remindAtOf = (reply: Reply) => (reply.kind === 'tool_use' ? (reply.input['remindAt'] as string) : undefined);

  it('reads the current instant and time zone from Sam\'s system prompt, to the second', () => {
    expect(parseClock(system(NOW))).toEqual({ now: NOW, timeZone: 'Asia/Tokyo' });
    expect(system(NOW)).toContain('now is 2026-12-01T17:10:30+09:00');
    expect(parseClock('You are Sam.')).toBeUndefined();
    expect(parseClock('time zone Mars/Olympus; now is 2026-12-01T17:10:30+09:00')).toBeUndefined();
  });

  it.each([
    ['remind me to call Bob in 20 minutes', 20],
    ['Remind me to call Bob in 1 hour.', 60],
    ['remind me to call Bob in 2 hours', 120],
    ['remind me to call Bob in an hour', 60],
    ['remind me in 45 mins to call Bob', 45],
  ])('%s: create_task with remindAt that far from the prompt\'s now, in the user\'s offset', (text, minutes) => {
    const reply = say(text);
    expect(reply).toMatchObject({ kind: 'tool_use', name: 'create_task', input: { title: 'call Bob' }, text: 'Setting a reminder.' });
    expect(remindAtOf(reply)).toMatch(/\+09:00$/);
    expect(Date.parse(remindAtOf(reply)!)).toBe(NOW.getTime() + minutes * 60_000);
  });

  it.each([
    ['remind me to call Bob at 17:30', '2026-12-01T17:30:00+09:00'],
    ['remind me to call Bob at 9pm', '2026-12-01T21:00:00+09:00'],
    ['remind me to call Bob at 5:45 p.m.', '2026-12-01T17:45:00+09:00'],
    ['remind me to call Bob tomorrow at 9', '2026-12-02T09:00:00+09:00'],
    ['remind me to call Bob tomorrow at 9am', '2026-12-02T09:00:00+09:00'],
    ['remind me to call Bob at 9 tomorrow', '2026-12-02T09:00:00+09:00'],
    ['remind me tomorrow at 12:15 to "call Bob"', '2026-12-02T12:15:00+09:00'],
  ])('%s: today\'s time when it is still to come, tomorrow\'s when asked', (text, remindAt) => {
    expect(say(text)).toEqual({ kind: 'tool_use', name: 'create_task', input: { title: 'call Bob', remindAt }, text: 'Setting a reminder.' });
  });

  it('"at 5pm" when 17:00 has already passed today is tomorrow\'s 17:00, and the reply says so', () => {
    expect(say('remind me to call Bob at 5pm')).toEqual({
      kind: 'tool_use',
      name: 'create_task',
      input: { title: 'call Bob', remindAt: '2026-12-02T17:00:00+09:00' },
      text: "17:00 has already passed today, so I'm making it tomorrow's. Setting a reminder.",
    });
    // 17:10 itself has passed by 30 seconds.
    expect(remindAtOf(say('remind me to call Bob at 17:10'))).toBe('2026-12-02T17:10:00+09:00');
  });

  it('"tomorrow" is the user\'s tomorrow: at 01:00 in Tokyo it is already the 2nd there while UTC is still on the 1st', () => {
    const lateNight = new Date('2026-12-01T16:00:00.000Z');
    expect(remindAtOf(say('remind me to call Bob tomorrow at 9', lateNight))).toBe('2026-12-03T09:00:00+09:00');
    expect(remindAtOf(say('remind me to call Bob at 9', lateNight))).toBe('2026-12-02T09:00:00+09:00');
  });

  it('"tomorrow at 9" across a DST change takes the offset in force tomorrow (New York, 8 March 2026)', () => {
    const saturdayEvening = new Date('2026-03-08T01:00:00.000Z'); // 20:00 EST on the 7th
    expect(remindAtOf(say('remind me to call Bob tomorrow at 9', saturdayEvening, 'America/New_York'))).toBe('2026-03-08T09:00:00-04:00');
    expect(remindAtOf(say('remind me to call Bob in 20 minutes', saturdayEvening, 'America/New_York'))).toBe('2026-03-07T20:20:00-05:00');
  });

  it('moves and clears the reminder of a listed task by title', () => {
    expect(say('move the reminder of call bob to 18:00')).toEqual({
      kind: 'tool_use',
      name: 'update_task',
      input: { id: BOB_ID, remindAt: '2026-12-01T18:00:00+09:00' },
      text: 'Moving the reminder of "call Bob".',
    });
    expect(remindAtOf(say('set a reminder for call Bob tomorrow at 8am'))).toBe('2026-12-02T08:00:00+09:00');
    expect(remindAtOf(say('change the reminder of Bob to in 2 hours'))).toBe('2026-12-01T19:10:30+09:00');
    expect(say('Cancel the reminder of call Bob.')).toEqual({
      kind: 'tool_use',
      name: 'update_task',
      input: { id: BOB_ID, remindAt: null },
      text: 'Clearing the reminder of "call Bob".',
    });
    expect(say('delete the reminder for walk the dog')).toEqual({ kind: 'text', text: expect.stringContaining('"walk the dog"') });
  });

  it.each(['remind me to call Bob', 'remind me to call Bob at 25:00', 'remind me to call Bob at 13pm', 'remind me to call Bob in 0 minutes'])(
    '%s: asks for a time it can read, calls no tool',
    (text) => {
      expect(say(text)).toEqual({ kind: 'text', text: expect.stringContaining("couldn't tell when to remind you") });
    },
  );

  it('with no current time in the request, says so instead of guessing', () => {
    expect(offlineReply(ask('remind me to call Bob in 20 minutes', SYSTEM))).toEqual({
      kind: 'text',
      text: expect.stringContaining('current time'),
    });
  });

  it('confirms the reminder from the tool result on the user\'s wall clock', () => {
    const round = (name: string, input: Record<string, unknown>, result: unknown, isError = false): MessagesParams => ({
      model: 'm',
      max_tokens: 100,
      system: system(NOW),
      messages: [
        { role: 'user', content: 'remind me' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name, input }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: JSON.stringify(result), ...(isError ? { is_error: true } : {}) }] },
      ],
    });
    const task = (remindAt: string | null) => ({ task: { id: BOB_ID, title: 'call Bob', remindAt } });
    const text = (params: MessagesParams) => (offlineReply(params) as { text: string }).text;
    expect(text(round('create_task', { title: 'call Bob' }, task('2026-12-01T08:30:00.000Z')))).toBe("I'll remind you to call Bob at 17:30.");
    expect(text(round('create_task', { title: 'call Bob' }, task('2026-12-02T08:00:00.000Z')))).toBe("I'll remind you to call Bob tomorrow at 17:00.");
    expect(text(round('create_task', { title: 'call Bob' }, task('2026-12-24T00:00:00.000Z')))).toBe("I'll remind you to call Bob on 2026-12-24 at 09:00.");
    expect(text(round('create_task', { title: 'call Bob' }, task(null)))).toBe('Done — created "call Bob".');
    expect(text(round('update_task', { id: BOB_ID, remindAt: '2026-12-01T18:00:00+09:00' }, task('2026-12-01T09:00:00.000Z')))).toBe(
      "Done — I'll remind you to call Bob at 18:00.",
    );
    expect(text(round('update_task', { id: BOB_ID, remindAt: null }, task(null)))).toBe('Done — "call Bob" has no reminder now.');
    expect(text(round('create_task', { title: 'x', remindAt: '2036-01-01T00:00:00Z' }, { code: 'VALIDATION', message: 'Invalid input' }, true))).toBe(
      "That didn't work: Invalid input.",
    );
  });

  it('[CHAT-8] task lines show a reminder on the user\'s wall clock, and still read back as the title', () => {
    const line = taskLine(bob, 'Asia/Tokyo');
    expect(line).toContain('reminder at 2026-12-01T18:00:00+09:00');
    expect(parseTaskLines(system(NOW))).toEqual([{ id: BOB_ID, title: 'call Bob' }]);
  });
});
