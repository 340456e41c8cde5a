/**
 * The offline model's default answers: deterministic, a pure function of the
 * request. The README's phrases become tool calls; a tool_result turn becomes a
 * one-line summary; anything else gets a friendly reply that lists the phrases.
 */
import { z } from 'zod';
import { isTimeZone } from '../../shared/schemas/common.js';
import { taskViews } from '../../shared/schemas/tasks.js';
import { addCalendarDays, tomorrowAt, zonedInstant, zonedParts, type WallTime } from '../../shared/zoned-time.js';

const contentBlockSchema = z.looseObject({ type: z.string() });

/** The part of the Messages API's request body the offline model reads and checks. */
export const messagesParamsSchema = z.looseObject({
  model: z.string().min(1),
  max_tokens: z.int().positive(),
  messages: z
    .array(
      z.looseObject({
        role: z.enum(['user', 'assistant']),
        content: z.union([z.string(), z.array(contentBlockSchema)]),
      }),
    )
    .min(1),
  system: z.union([z.string(), z.array(contentBlockSchema)]).optional(),
  stream: z.boolean().optional(),
});

export type MessagesParams = z.infer<typeof messagesParamsSchema>;
type WireBlock = z.infer<typeof contentBlockSchema>;
type WireMessage = MessagesParams['messages'][number];

/**
 * A default answer: text (ending as `stopReason` says, default end_turn, and
 * `chunkSize` characters a delta, default a word), or a tool call led by a short text.
 */
export type Reply =
  | { kind: 'text'; text: string; stopReason?: 'pause_turn' | 'refusal'; chunkSize?: number }
  | { kind: 'tool_use'; name: string; input: Record<string, unknown>; text: string };

export interface TaskLine {
  id: string;
  title: string;
}

/**
 * Reads the open tasks from the system prompt, one per line, as Sam's prompt
 * builder writes them (`taskLine` in server/features/chat/prompt.ts):
 *
 *     - [<id>] "<title>" — <details>   (the title as a JSON string)
 *     - [<id>] <title> — <details>     (a bare title also works)
 */
export function parseTaskLines(system: MessagesParams['system']): TaskLine[] {
  const lineRe = /^[ \t]*-[ \t]+\[([^\]\s]+)\][ \t]+(.+?)[ \t]*$/gm;
  const tasks: TaskLine[] = [];
  for (const [, id, rest] of systemText(system).matchAll(lineRe)) {
    if (id === undefined || rest === undefined) continue;
    const title = taskTitleOf(rest);
    if (title) tasks.push({ id, title });
  }
  return tasks;
}

function taskTitleOf(rest: string): string {
  const quoted = /^"(?:[^"\\]|\\.)*"/.exec(rest)?.[0];
  if (quoted !== undefined) {
    const title = parseJson(quoted);
    if (typeof title === 'string') return title.trim();
  }
  return rest.split(' — ')[0]?.trim() ?? '';
}

/** Exact title, then case-insensitive equality, then the shortest title containing the query. */
export function findTask(tasks: readonly TaskLine[], query: string): TaskLine | undefined {
  const q = query.toLowerCase();
  return (
    tasks.find((t) => t.title === query) ??
    tasks.find((t) => t.title.toLowerCase() === q) ??
    tasks
      .filter((t) => t.title.toLowerCase().includes(q))
      .reduce<TaskLine | undefined>((best, t) => (best && best.title.length <= t.title.length ? best : t), undefined)
  );
}

/** The current instant and the user's time zone, as Sam's system prompt states them. */
export interface PromptClock {
  now: Date;
  timeZone: string;
}

/**
 * Reads `time zone <IANA name>; now is <ISO 8601 with offset>` from the system
 * prompt, as `buildSystemPrompt` in server/features/chat/prompt.ts writes it:
 * the offline model knows the time only from the request, as Claude does.
 */
export function parseClock(system: MessagesParams['system']): PromptClock | undefined {
  const m = /time zone ([^\s;,)]+); now is (\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d))/.exec(systemText(system));
  if (!m?.[1] || !m[2] || !isTimeZone(m[1])) return undefined;
  const now = new Date(m[2]);
  return Number.isNaN(now.getTime()) ? undefined : { now, timeZone: m[1] };
}

/** A reminder time as said: `in 20 minutes`, `at 17:30` (the next 17:30 to come), `tomorrow at 9`. */
export type SpokenTime = { kind: 'in'; minutes: number } | { kind: 'at'; hour: number; minute: number; tomorrow: boolean };

export type Command =
  | { tool: 'create_task'; title: string }
  | { tool: 'complete_task' | 'delete_task'; title: string }
  | { tool: 'next_task' }
  | { tool: 'list_tasks'; view?: string }
  | { tool: 'remind'; title: string; when: SpokenTime }
  | { tool: 'move_reminder'; title: string; when: SpokenTime }
  | { tool: 'clear_reminder'; title: string }
  | { tool: 'search_history'; query: string };

/*
 * The reminder phrases are a closed list like the others, read with the same
 * kind of patterns: the open-ended parsing (chrono-node) belongs to the
 * client's quick-add, and the wall-clock arithmetic to shared/zoned-time.ts.
 */
const CLOCK = String.raw`(\d{1,2})(?:[:.](\d\d))? ?(?:([ap])\.?m\.?)?`;
const IN = String.raw`in (\d{1,5}|an?|one) (minutes?|mins?|hours?|hrs?)`;
/** `in 20 minutes`, `at 17:30`, `tomorrow at 9am`, `at 9 tomorrow`; with `bare`, also `17:30` and `tomorrow 9` */
const spokenTime = (bare: boolean) =>
  String.raw`${IN}|(tomorrow )?${bare ? '(?:at )?' : 'at '}${CLOCK}|at ${CLOCK} tomorrow|(tomorrow) ${CLOCK}`;

/** A spoken time out of its pattern's groups, or undefined when the clock reading is no time of day (25:00, 13pm). */
function spokenTimeOf(groups: (string | undefined)[]): SpokenTime | undefined {
  const [count, unit, tomorrowA, hA, mA, apA, hB, mB, apB, tomorrowC, hC, mC, apC] = groups;
  if (count !== undefined && unit !== undefined) {
    const n = /^\d+$/.test(count) ? Number(count) : 1;
    return n > 0 ? { kind: 'in', minutes: unit.startsWith('h') ? n * 60 : n } : undefined;
  }
  const clock = hA !== undefined ? [hA, mA, apA] : hB !== undefined ? [hB, mB, apB] : [hC, mC, apC];
  const time = wallTimeOf(clock[0], clock[1], clock[2]);
  return time && { kind: 'at', ...time, tomorrow: Boolean(tomorrowA ?? tomorrowC) || hB !== undefined };
}

function wallTimeOf(hour: string | undefined, minute: string | undefined, ampm: string | undefined): { hour: number; minute: number } | undefined {
  if (hour === undefined) return undefined;
  let h = Number(hour);
  const m = minute === undefined ? 0 : Number(minute);
  if (m > 59) return undefined;
  if (ampm !== undefined) {
    if (h < 1 || h > 12) return undefined;
    h = (h % 12) + (ampm.toLowerCase() === 'p' ? 12 : 0);
  }
  return h <= 23 ? { hour: h, minute: m } : undefined;
}

/** The reminder phrases: `remind me to <title> <time>`, `move the reminder of <task> to <time>`, `clear the reminder of <task>`. */
function parseReminderCommand(text: string): Command | undefined {
  const time = spokenTime(false);
  let m = new RegExp(`^remind me (?:to )?(.+?) (?:${time})$`, 'i').exec(text);
  if (m?.[1]) return reminder('remind', m[1], spokenTimeOf(m.slice(2)));
  m = new RegExp(`^remind me (?:${time}) (?:to )?(.+)$`, 'i').exec(text);
  if (m?.[14]) return reminder('remind', m[14], spokenTimeOf(m.slice(1, 14)));
  m = new RegExp(`^(?:move|change|set|reschedule|push) (?:the |my |a )?reminder (?:of|for|on) (.+?) (?:to |for )?(?:${spokenTime(true)})$`, 'i').exec(text);
  if (m?.[1]) return reminder('move_reminder', m[1], spokenTimeOf(m.slice(2)));
  m = /^(?:clear|cancel|remove|delete|drop) (?:the |my )?reminder (?:of|for|on) (.+)$/i.exec(text);
  const title = m?.[1] && unquote(m[1]);
  return title ? { tool: 'clear_reminder', title } : undefined;
}

function reminder(tool: 'remind' | 'move_reminder', rawTitle: string, when: SpokenTime | undefined): Command | undefined {
  const title = unquote(rawTitle);
  return title && when ? { tool, title, when } : undefined;
}

const unquote = (raw: string) => (/^"(.*)"$/.exec(raw.trim())?.[1] ?? raw).trim();

/** The instant a spoken time means at `clock`, and whether "at <time>" had already passed today (so it is tomorrow's). */
export function resolveSpokenTime(when: SpokenTime, clock: PromptClock): { at: Date; passedToday: boolean } {
  const { now, timeZone } = clock;
  if (when.kind === 'in') return { at: new Date(now.getTime() + when.minutes * 60_000), passedToday: false };
  const time: WallTime = { hour: when.hour, minute: when.minute };
  if (when.tomorrow) return { at: tomorrowAt(now, time, timeZone), passedToday: false };
  const today = zonedInstant(zonedParts(now, timeZone).date, time, timeZone);
  return today > now ? { at: today, passedToday: false } : { at: tomorrowAt(now, time, timeZone), passedToday: true };
}

const pad = (n: number) => String(n).padStart(2, '0');

/** `instant` as ISO 8601 with the UTC offset in force then in `timeZone` (`2026-12-01T17:30:00+09:00`), as Claude would write it. */
export function zonedIso(instant: Date, timeZone: string): string {
  const { date, time } = zonedParts(instant, timeZone);
  const wall = `${date}T${pad(time.hour)}:${pad(time.minute)}:${pad(time.second)}`;
  const offsetMinutes = Math.round((Date.parse(`${wall}Z`) - Math.floor(instant.getTime() / 1000) * 1000) / 60_000);
  const abs = Math.abs(offsetMinutes);
  return `${wall}${offsetMinutes < 0 ? '-' : '+'}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** `at 17:30`, `tomorrow at 09:00` or `on 2026-12-24 at 09:00`, on the user's wall clock. */
export function spokenWhen(instant: Date, clock: PromptClock | undefined): string {
  if (!clock) return `at ${instant.toISOString()}`;
  const { date, time } = zonedParts(instant, clock.timeZone);
  const hhmm = `${pad(time.hour)}:${pad(time.minute)}`;
  const today = zonedParts(clock.now, clock.timeZone).date;
  if (date === today) return `at ${hhmm}`;
  return date === addCalendarDays(today, 1) ? `tomorrow at ${hhmm}` : `on ${date} at ${hhmm}`;
}

/**
 * The README's phrases (and `show my <view> tasks`, and the reminder phrases),
 * matched case-insensitively on the trimmed text with whitespace collapsed and
 * trailing `.`, `!`, `?` removed; a title may be quoted.
 */
export function parseCommand(raw: string): Command | undefined {
  const text = raw.trim().replace(/\s+/g, ' ').replace(/[.!?]+$/, '');
  const reminderCommand = parseReminderCommand(text);
  if (reminderCommand) return reminderCommand;
  let m = /^add task:? (.+)$/i.exec(text);
  if (m?.[1]) return titled('create_task', m[1]);
  m = /^(complete|delete) (.+)$/i.exec(text);
  if (m?.[1] && m[2]) return titled(m[1].toLowerCase() === 'complete' ? 'complete_task' : 'delete_task', m[2]);
  if (/^what should i do next$/i.test(text)) return { tool: 'next_task' };
  m = new RegExp(`^(?:list|show) my(?: (${taskViews.join('|')}))? tasks$`, 'i').exec(text);
  if (m) return m[1] ? { tool: 'list_tasks', view: m[1].toLowerCase() } : { tool: 'list_tasks' };
  m = /^(?:search|find in) (?:my )?(?:history|chats|conversations|messages|everything) for (.+)$/i.exec(text) ?? /^what did i (?:say|write) about (.+)$/i.exec(text);
  const query = m?.[1] && unquote(m[1]);
  return query ? { tool: 'search_history', query } : undefined;
}

function titled(tool: 'create_task' | 'complete_task' | 'delete_task', rest: string): Command | undefined {
  const t = rest.trim();
  const title = (/^"(.*)"$/.exec(t)?.[1] ?? t).trim();
  return title ? { tool, title } : undefined;
}

/** The default answer for a request: a pure function of the request's params. */
export function offlineReply(params: MessagesParams): Reply {
  const lastUserIndex = params.messages.findLastIndex((m) => m.role === 'user');
  const userBlocks = blocksOf(params.messages[lastUserIndex]);
  const toolResults = userBlocks.filter((b) => b.type === 'tool_result');
  if (toolResults.length > 0) {
    const calls = toolCallsById(params.messages[lastUserIndex - 1]);
    const clock = parseClock(params.system);
    return { kind: 'text', text: toolResults.map((r) => summariseToolResult(r, calls, clock)).join('\n\n') };
  }
  const text = userBlocks.map(blockText).join('\n');
  return stopReply(text, params.messages.at(-1)?.role === 'assistant') ?? commandReply(text, parseTaskLines(params.system), parseClock(params.system));
}

/**
 * The text of the assistant turn a request ends with (a prefill, or an answer
 * sent back to be continued), or '' when it ends with a user turn. The answer
 * to such a request is what follows that text.
 */
export function assistantPrefill(params: MessagesParams): string {
  const last = params.messages.at(-1);
  return last?.role === 'assistant' ? blocksOf(last).map(blockText).join('') : '';
}

/** The API's documented test prompt for a streaming refusal ("Streaming refusals" in Anthropic's docs). */
export const REFUSAL_TEST_PROMPT = 'ANTHROPIC_MAGIC_STRING_TRIGGER_REFUSAL_1FAEFB6177B4672DEE07F9D3AFC62588CCD2631EDCF22E8CCC1FB35B501C9C86';

const storyParagraph = (n: number) =>
  `Chapter ${n}. The lighthouse keeper counted the ships again: one for every task finished, two for every task put off, ` +
  'and a small paper boat for the ones nobody remembered writing down. The sea did not mind; it only asked that the lamp be lit by dusk.';
/** About 3,600 tokens: longer than an answer's usual max_tokens, so it stops there and can be continued. */
export const LONG_STORY = Array.from({ length: 60 }, (_, i) => storyParagraph(i + 1)).join('\n\n');

/**
 * The phrases that show the stop reasons: the API's refusal test prompt, `write
 * a long story` (longer than max_tokens: it stops there, and a continuation
 * request gets the rest), `research <topic>` (a long turn the model pauses:
 * pause_turn, then the rest when the paused turn is sent back).
 */
function stopReply(text: string, continuing: boolean): Reply | undefined {
  if (text.includes(REFUSAL_TEST_PROMPT)) return { kind: 'text', text: '', stopReason: 'refusal' };
  const flat = text.trim().replace(/\s+/g, ' ').replace(/[.!?]+$/, '');
  if (/^write (?:me )?a long story$/i.test(flat)) return { kind: 'text', text: LONG_STORY, chunkSize: 48 };
  const topic = /^research (.+)$/i.exec(flat)?.[1];
  if (!topic) return undefined;
  const first = `Looking into ${topic}, part 1 of 2. Claude pauses a long turn like this one (stop reason pause_turn), and Sam sends it back to go on.`;
  const second = `\n\nPart 2 of 2: that is all Sam's offline model can say about ${topic}. Set **ANTHROPIC_API_KEY** on the server to ask Claude.`;
  return continuing ? { kind: 'text', text: first + second } : { kind: 'text', text: first, stopReason: 'pause_turn' };
}

const notFound = (title: string): Reply => ({
  kind: 'text',
  text: `I couldn't find an open task named "${title}". Say "list my tasks" to see what is open.`,
});

function commandReply(text: string, tasks: TaskLine[], clock: PromptClock | undefined): Reply {
  const command = parseCommand(text);
  if (!command) return { kind: 'text', text: /^\s*remind me\b/i.test(text) ? REMIND_HELP : friendlyReply(text) };
  switch (command.tool) {
    case 'remind':
    case 'move_reminder': {
      if (!clock) return { kind: 'text', text: "I can't set a reminder: I wasn't told the current time and time zone." };
      const task = command.tool === 'move_reminder' ? findTask(tasks, command.title) : undefined;
      if (command.tool === 'move_reminder' && !task) return notFound(command.title);
      const { at, passedToday } = resolveSpokenTime(command.when, clock);
      const remindAt = zonedIso(at, clock.timeZone);
      const { when } = command;
      const passed = passedToday && when.kind === 'at' ? `${pad(when.hour)}:${pad(when.minute)} has already passed today, so I'm making it tomorrow's. ` : '';
      return task
        ? { kind: 'tool_use', name: 'update_task', input: { id: task.id, remindAt }, text: `${passed}Moving the reminder of "${task.title}".` }
        : { kind: 'tool_use', name: 'create_task', input: { title: command.title, remindAt }, text: `${passed}Setting a reminder.` };
    }
    case 'clear_reminder': {
      const task = findTask(tasks, command.title);
      if (!task) return notFound(command.title);
      return { kind: 'tool_use', name: 'update_task', input: { id: task.id, remindAt: null }, text: `Clearing the reminder of "${task.title}".` };
    }
    case 'create_task':
      return { kind: 'tool_use', name: 'create_task', input: { title: command.title }, text: 'Adding that task.' };
    case 'complete_task':
    case 'delete_task': {
      const task = findTask(tasks, command.title);
      if (!task) return notFound(command.title);
      const lead = command.tool === 'complete_task' ? `Marking "${task.title}" as complete.` : `Deleting "${task.title}".`;
      return { kind: 'tool_use', name: command.tool, input: { id: task.id }, text: lead };
    }
    case 'next_task':
      return { kind: 'tool_use', name: 'next_task', input: {}, text: 'Let me pick your next task.' };
    case 'list_tasks': {
      const input = command.view ? { view: command.view } : {};
      return { kind: 'tool_use', name: 'list_tasks', input, text: 'Let me look at your tasks.' };
    }
    case 'search_history':
      return { kind: 'tool_use', name: 'search_history', input: { query: command.query }, text: `Let me look for "${command.query}".` };
  }
}

function friendlyReply(text: string): string {
  const gist = text.replace(/\s+/g, ' ').trim();
  const echo = gist.length === 0 ? 'your message' : `"${gist.length > 80 ? `${gist.slice(0, 77)}...` : gist}"`;
  return [
    `Thanks for ${echo}. I'm Sam's offline model, a small built-in stand-in for Claude that runs ` +
      "without a network, so I can't reason about that the way Claude would.",
    '',
    'I can still manage your tasks. Try one of these:',
    '',
    '- `add task: buy milk` creates a task',
    '- `complete buy milk` marks it as done',
    '- `what should I do next?` picks your next task',
    '- `list my tasks` shows what is open',
    '- `search my history for dentist` (or `what did I say about dentist?`) finds what you wrote',
    '- `remind me to call Bob in 20 minutes` (or `at 17:30`, `tomorrow at 9`) sets a reminder',
    '- `write a long story` stops at the length limit, and **Continue** goes on',
    '',
    'Set **ANTHROPIC_API_KEY** on the server to talk to Claude itself.',
  ].join('\n');
}

const REMIND_HELP = [
  "I couldn't tell when to remind you. Say it like one of these:",
  '',
  '- `remind me to call Bob in 20 minutes` (or `in 2 hours`)',
  '- `remind me to call Bob at 17:30` (or `at 5pm`: the next 17:00 to come)',
  '- `remind me to call Bob tomorrow at 9`',
  '- `move the reminder of call Bob to 18:00`, `clear the reminder of call Bob`',
].join('\n');

interface ToolCall {
  name: string;
  input: Record<string, unknown>;
}

function toolCallsById(assistant: WireMessage | undefined): Map<string, ToolCall> {
  const calls = new Map<string, ToolCall>();
  if (assistant?.role !== 'assistant') return calls;
  for (const block of blocksOf(assistant)) {
    if (block.type !== 'tool_use' || typeof block['id'] !== 'string' || typeof block['name'] !== 'string') continue;
    calls.set(block['id'], { name: block['name'], input: asRecord(block['input']) ?? {} });
  }
  return calls;
}

/**
 * Sam's tools answer with JSON text (server/features/chat/tools.ts): `{ task }`,
 * `{ tasks }`, or `{ code, message }` with `is_error` set.
 */
function summariseToolResult(block: WireBlock, calls: Map<string, ToolCall>, clock: PromptClock | undefined): string {
  const call = typeof block['tool_use_id'] === 'string' ? calls.get(block['tool_use_id']) : undefined;
  const raw = typeof block['content'] === 'string' ? block['content'] : '';
  const result = asRecord(parseJson(raw));
  if (block['is_error'] === true) return `That didn't work: ${stringField(result, 'message') ?? 'the tool failed'}.`;
  const taskTitle = stringField(asRecord(result?.['task']), 'title');
  const title = taskTitle ?? stringField(call?.input, 'title') ?? 'the task';
  const remindAt = stringField(asRecord(result?.['task']), 'remindAt');
  const reminding = remindAt === undefined ? undefined : `I'll remind you to ${title} ${spokenWhen(new Date(remindAt), clock)}.`;
  switch (call?.name) {
    case 'create_task':
      return reminding ?? `Done — created "${title}".`;
    case 'update_task':
      if (call.input['remindAt'] === null) return `Done — "${title}" has no reminder now.`;
      return reminding !== undefined && typeof call.input['remindAt'] === 'string' ? `Done — ${reminding}` : 'Done.';
    case 'complete_task':
      return `Done — marked "${title}" as complete.`;
    case 'delete_task':
      return `Done — deleted "${title}". You can restore it from the deleted tasks.`;
    case 'list_tasks':
      return listSummary(result?.['tasks']);
    case 'next_task':
      return taskTitle ? `I'd do **${taskTitle}** next.` : 'Nothing is waiting for you right now. Enjoy the break.';
    case 'search_history':
      return searchSummary(result?.['results'], stringField(call.input, 'query') ?? 'that');
    default:
      return 'Done.';
  }
}

function listSummary(tasks: unknown): string {
  const titles = (Array.isArray(tasks) ? tasks : []).map((t) => stringField(asRecord(t), 'title') ?? 'untitled');
  if (titles.length === 0) return 'You have no tasks there.';
  const head = titles.length === 1 ? 'Here is your task:' : `Here are your ${titles.length} tasks:`;
  return [head, '', ...titles.map((t) => `- ${t}`)].join('\n');
}

/** Sam's `search_history` answers `{ results: { kind, title, snippet, status? }[] }`, best first. */
function searchSummary(results: unknown, query: string): string {
  const hits = (Array.isArray(results) ? results : []).map((r) => asRecord(r) ?? {});
  if (hits.length === 0) return `I found nothing about "${query}" in your tasks and conversations.`;
  const what = (kind: unknown) => (kind === 'task' ? 'task' : kind === 'conversation' ? 'conversation' : 'message');
  const line = (h: Record<string, unknown>) => {
    const trash = h['status'] === 'deleted' ? ', in the trash' : '';
    return `- ${what(h['kind'])} in **${stringField(h, 'title') ?? 'untitled'}**${trash}: ${stringField(h, 'snippet') ?? ''}`;
  };
  return [`I found ${hits.length === 1 ? 'one match' : `${hits.length} matches`} for "${query}":`, '', ...hits.map(line)].join('\n');
}

function systemText(system: MessagesParams['system']): string {
  if (system === undefined) return '';
  if (typeof system === 'string') return system;
  return system.map(blockText).join('\n');
}

function blockText(block: WireBlock): string {
  return block.type === 'text' && typeof block['text'] === 'string' ? block['text'] : '';
}

function blocksOf(message: WireMessage | undefined): WireBlock[] {
  if (!message) return [];
  return typeof message.content === 'string' ? [{ type: 'text', text: message.content }] : message.content;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function stringField(record: Record<string, unknown> | undefined, key: string): string | undefined {
  const value = record?.[key];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
