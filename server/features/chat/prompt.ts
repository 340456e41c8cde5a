/** The system prompt (CHAT-8) and the history that fits a token budget. */
import type Anthropic from '@anthropic-ai/sdk';
import type { Task } from '../../../shared/schemas/tasks.js';
import type { StopReason } from '../../../shared/schemas/chat.js';
import { calendarDateIn } from '../tasks/next-task.js';
import { addDays, daysBetween } from '../tasks/recurrence.js';

/** How many open tasks the prompt lists at most. */
export const PROMPT_TASK_LIMIT = 60;
/** Rough token budget for the history (about 4 characters a token). */
export const HISTORY_TOKEN_BUDGET = 24_000;
export const estimateTokens = (text: string) => Math.ceil(text.length / 4);

const DAY = 86_400_000;

export interface PromptUser {
  fullName: string;
  timezone: string;
}

/** Alerts the original assistant raised about a user's open tasks. */
export function taskAlerts(tasks: readonly Task[], today: string, now: Date): string[] {
  const tomorrow = addDays(today, 1);
  const alerts: string[] = [];
  for (const t of tasks) {
    if (t.deadline && t.deadline < today) alerts.push(`OVERDUE by ${daysBetween(t.deadline, today)} day(s): "${t.title}" (due ${t.deadline})`);
    else if (t.deadline === today) alerts.push(`DUE TODAY: "${t.title}"`);
    else if (t.deadline === tomorrow) alerts.push(`DUE TOMORROW: "${t.title}"`);
    const idleDays = Math.floor((now.getTime() - new Date(t.updatedAt).getTime()) / DAY);
    if (t.status === 'waiting_on' && idleDays > 3) {
      alerts.push(`WAITING for ${idleDays} days on ${t.waitingOn ?? 'someone'}: "${t.title}" — time to follow up?`);
    } else if (t.status !== 'waiting_on' && idleDays > 3) {
      alerts.push(`NOT TOUCHED for ${idleDays} days: "${t.title}"`);
    }
  }
  return alerts;
}

/**
 * One line per open task: `- [<id>] "<title>" — details`. The offline model
 * reads this exact format to resolve titles to ids. A reminder shows on the
 * wall clock of `timeZone`, with its offset, as the model is asked to write one.
 */
export function taskLine(t: Task, timeZone = 'UTC'): string {
  const details = [
    t.status.replace('_', ' '),
    t.deadline ? `due ${t.deadline}` : null,
    `intensity ${t.intensity}`,
    t.project ? `project ${t.project}` : null,
    t.waitingOn ? `waiting on ${t.waitingOn}` : null,
    t.recurrence ? `repeats every ${t.recurrence.interval} ${t.recurrence.type.replace(/ly$/, '').replace('dai', 'day')}(s)` : null,
    t.dependencies.length ? `depends on ${t.dependencies.join(', ')}` : null,
    t.remindAt ? `reminder at ${localClock(new Date(t.remindAt), timeZone).iso}` : null,
  ].filter(Boolean);
  return `- [${t.id}] ${JSON.stringify(t.title)} — ${details.join(', ')}`;
}

const clockFormats = new Map<string, Intl.DateTimeFormat>();

/** A cached formatter of the weekday, date, 24-hour time and UTC offset in `timeZone` (building one costs more than a stream start's other work). */
function clockFormatIn(timeZone: string): Intl.DateTimeFormat {
  let format = clockFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-GB', {
      weekday: 'long',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'longOffset',
      timeZone,
    });
    clockFormats.set(timeZone, format);
  }
  return format;
}

/** What the wall clock in `timeZone` shows at `instant`, with `iso` the local ISO 8601 time and its offset (`2026-12-01T17:30:00+09:00`). */
export function localClock(instant: Date, timeZone: string): { weekday: string; time: string; iso: string } {
  const parts = clockFormatIn(timeZone).formatToParts(instant);
  const part = (type: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === type)?.value ?? '';
  const offset = part('timeZoneName').replace('GMT', '') || '+00:00';
  const time = `${part('hour')}:${part('minute')}`;
  return { weekday: part('weekday'), time, iso: `${part('year').padStart(4, '0')}-${part('month')}-${part('day')}T${time}:${part('second')}${offset}` };
}

/**
 * The system prompt as two blocks (CHAT-12): what never changes for a user,
 * marked as a cache breakpoint, so that the tools and it are read from the
 * prompt cache on every turn after the first; then the clock, the open tasks
 * and the alerts, which change from turn to turn and so come after it.
 */
export type SystemPrompt = [Anthropic.TextBlockParam & { cache_control: Anthropic.CacheControlEphemeral }, Anthropic.TextBlockParam];

/** The system prompt's text, as the model reads it. */
export const systemText = (system: SystemPrompt): string => system.map((block) => block.text).join('\n\n');

export function buildSystemPrompt(user: PromptUser, openTasks: readonly Task[], now: Date): SystemPrompt {
  const today = calendarDateIn(user.timezone, now);
  const clock = localClock(now, user.timezone);
  const shown = openTasks.slice(0, PROMPT_TASK_LIMIT);
  const alerts = taskAlerts(openTasks, today, now);
  const name = user.fullName.trim() || 'the user';
  const stable = [
    `You are Sam, a warm and efficient personal assistant. You help ${name} plan their day and manage their tasks.`,
    'Use the tools to create, update, complete, delete, restore and list tasks; never invent task ids — use the ids listed below or from tool results.',
    'Answer concisely in Markdown. When you change tasks, say briefly what you did.',
    'To remind the user of a task, set its `remindAt` (create_task or update_task): an ISO 8601 time with the UTC offset in force then in their time zone, worked out from the current time below ("in 20 minutes", "at 17:30", "tomorrow at 9"). A task has one reminder: setting `remindAt` again moves it, null clears it.',
  ];
  const changing = [
    `Today is ${clock.weekday}, ${today} (local time ${clock.time}, time zone ${user.timezone}; now is ${clock.iso}). Dates you give to tools are YYYY-MM-DD in this time zone.`,
    '',
    `Open tasks (${openTasks.length}${openTasks.length > shown.length ? `, the first ${shown.length} shown` : ''}):`,
    ...(shown.length ? shown.map((t) => taskLine(t, user.timezone)) : ['(none)']),
    '',
    'Alerts:',
    ...(alerts.length ? alerts.map((a) => `- ${a}`) : ['(none)']),
  ];
  return [
    { type: 'text', text: stable.join('\n'), cache_control: { type: 'ephemeral' } },
    { type: 'text', text: changing.join('\n') },
  ];
}

export interface HistoryMessage {
  role: 'user' | 'assistant';
  content: string;
  /** an answer's stop reason: a refused turn is left out (CHAT-13) */
  stopReason?: StopReason | null;
}

/**
 * The conversation without its refused turns: the API asks that the turn a
 * refusal answered be removed or changed before going on, or the refusals go
 * on ("Streaming refusals" in Anthropic's docs), so a refused answer and the
 * user message it answered are not sent again.
 */
function withoutRefusals(messages: readonly HistoryMessage[]): HistoryMessage[] {
  const kept: HistoryMessage[] = [];
  for (const m of messages) {
    if (m.role === 'assistant' && m.stopReason === 'refusal') {
      while (kept.at(-1)?.role === 'user') kept.pop();
    } else kept.push(m);
  }
  return kept;
}

/**
 * The most recent messages that fit the budget, oldest first, starting with a
 * user turn, roles alternating (consecutive turns of one role are merged),
 * refused turns left out.
 */
export function trimHistory(all: readonly HistoryMessage[], budget = HISTORY_TOKEN_BUDGET): Anthropic.MessageParam[] {
  const messages = withoutRefusals(all);
  const picked: HistoryMessage[] = [];
  let used = 0;
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]!;
    if (m.content.trim() === '') continue;
    const cost = estimateTokens(m.content);
    if (picked.length > 0 && used + cost > budget) break;
    picked.unshift(m);
    used += cost;
  }
  while (picked.length > 0 && picked[0]!.role !== 'user') picked.shift();
  const merged: Anthropic.MessageParam[] = [];
  for (const m of picked) {
    const last = merged[merged.length - 1];
    if (last && last.role === m.role) last.content = `${last.content as string}\n\n${m.content}`;
    else merged.push({ role: m.role, content: m.content });
  }
  return merged;
}
