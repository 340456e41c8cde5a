import { describe, expect, it } from 'vitest';
import { buildSystemPrompt, systemText, taskAlerts, trimHistory } from './prompt.js';
import type { Task } from '../../../shared/schemas/tasks.js';
import { wireTask } from '../../../shared/schemas/task.fixture.js';

const now = new Date('2026-11-29T10:00:00.000Z');
const task = (over: Partial<Task>): Task =>
  wireTask({ id: '00000000-0000-4000-8000-000000000001', title: 'A task', description: '', seq: 1, createdAt: now.toISOString(), updatedAt: now.toISOString(), ...over });

describe('the system prompt (CHAT-8)', () => {
  it('[CHAT-8] introduces Sam, gives the date in the user\'s time zone and lists the open tasks', () => {
    // 10:00 UTC on 29 Nov is already 30 Nov in Kiritimati (UTC+14).
    const prompt = systemText(buildSystemPrompt({ fullName: 'Ada', timezone: 'Pacific/Kiritimati' }, [task({ title: 'Water "the" plants' })], now));
    expect(prompt).toContain('You are Sam');
    expect(prompt).toContain('Ada');
    expect(prompt).toContain('2026-11-30');
    expect(prompt).toContain('Monday');
    expect(prompt).toContain('Pacific/Kiritimati');
    expect(prompt).toContain('"Water \\"the\\" plants"');
  });

  it('[CHAT-8] [CHAT-12] states the time to the second after a cached block that never changes for a user', () => {
    const user = { fullName: 'Ada', timezone: 'Asia/Tokyo' };
    const [earlyStable, early] = buildSystemPrompt(user, [], now);
    const [laterStable, later] = buildSystemPrompt(user, [task({ title: 'Call Bob', remindAt: '2026-11-29T10:20:00.000Z' })], new Date(now.getTime() + 86_400_000 + 61_000));
    expect(early.text).toContain('local time 19:00, time zone Asia/Tokyo; now is 2026-11-29T19:00:00+09:00');
    expect(later.text).toContain('now is 2026-11-30T19:01:01+09:00');
    expect(later.text).toContain('reminder at 2026-11-29T19:20:00+09:00');
    // The first block is the same byte for byte, another day and other tasks, and is the cache breakpoint; the second is not.
    expect(JSON.stringify(laterStable)).toBe(JSON.stringify(earlyStable));
    expect(earlyStable.cache_control).toEqual({ type: 'ephemeral' });
    expect(early.cache_control).toBeUndefined();
    expect(earlyStable.text).toContain('remindAt');
    expect(earlyStable.text).not.toMatch(/2026|19:0|Asia|Call Bob/);
  });

  it('raises the alerts of the original assistant: overdue, today, tomorrow, waiting and untouched for more than 3 days', () => {
    const old = new Date(now.getTime() - 5 * 86_400_000).toISOString();
    const alerts = taskAlerts(
      [
        task({ title: 'late', deadline: '2026-11-27' }),
        task({ title: 'today', deadline: '2026-11-29' }),
        task({ title: 'tomorrow', deadline: '2026-11-30' }),
        task({ title: 'waiting', status: 'waiting_on', waitingOn: 'Bob', updatedAt: old }),
        task({ title: 'stale', updatedAt: old }),
        task({ title: 'fresh', deadline: '2026-12-20' }),
      ],
      '2026-11-29',
      now,
    );
    expect(alerts).toEqual([
      'OVERDUE by 2 day(s): "late" (due 2026-11-27)',
      'DUE TODAY: "today"',
      'DUE TOMORROW: "tomorrow"',
      'WAITING for 5 days on Bob: "waiting" — time to follow up?',
      'NOT TOUCHED for 5 days: "stale"',
    ]);
  });
});

describe('history within a token budget', () => {
  it('keeps the most recent turns that fit, starting with a user turn, roles alternating', () => {
    const history = [
      { role: 'user' as const, content: 'a'.repeat(400) },
      { role: 'assistant' as const, content: 'b'.repeat(400) },
      { role: 'user' as const, content: 'c'.repeat(40) },
      { role: 'assistant' as const, content: '' },
      { role: 'user' as const, content: 'd'.repeat(40) },
    ];
    expect(trimHistory(history, 50)).toEqual([{ role: 'user', content: `${'c'.repeat(40)}\n\n${'d'.repeat(40)}` }]);
    expect(trimHistory(history, 10_000)).toHaveLength(3);
    expect(trimHistory(history, 10_000)[0]!.role).toBe('user');
  });

  it('[CHAT-13] leaves out a refused answer and the user message it answered, so the next turn is not refused again', () => {
    const history = [
      { role: 'user' as const, content: 'first' },
      { role: 'assistant' as const, content: 'fine', stopReason: 'end_turn' as const },
      { role: 'user' as const, content: 'the refused one' },
      { role: 'assistant' as const, content: 'Let me', stopReason: 'refusal' as const },
      { role: 'user' as const, content: 'something else' },
    ];
    expect(trimHistory(history)).toEqual([
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'fine' },
      { role: 'user', content: 'something else' },
    ]);
  });
});
