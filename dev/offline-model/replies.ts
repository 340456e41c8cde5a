/**
 * The offline model's default answers: deterministic, a pure function of the
 * request. The README's phrases become tool calls; a tool_result turn becomes a
 * one-line summary; anything else gets a friendly reply that lists the phrases.
 */
import { z } from 'zod';
import { taskViews } from '../../shared/schemas/tasks.js';

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

/** A default answer: text, or a tool call led by a short text. */
export type Reply = { kind: 'text'; text: string } | { kind: 'tool_use'; name: string; input: Record<string, unknown>; text: string };

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

export type Command =
  | { tool: 'create_task'; title: string }
  | { tool: 'complete_task' | 'delete_task'; title: string }
  | { tool: 'next_task' }
  | { tool: 'list_tasks'; view?: string };

/**
 * The README's phrases (and `show my <view> tasks`), matched case-insensitively
 * on the trimmed text with whitespace collapsed and trailing `.`, `!`, `?`
 * removed; a title may be quoted.
 */
export function parseCommand(raw: string): Command | undefined {
  const text = raw.trim().replace(/\s+/g, ' ').replace(/[.!?]+$/, '');
  let m = /^add task:? (.+)$/i.exec(text);
  if (m?.[1]) return titled('create_task', m[1]);
  m = /^(complete|delete) (.+)$/i.exec(text);
  if (m?.[1] && m[2]) return titled(m[1].toLowerCase() === 'complete' ? 'complete_task' : 'delete_task', m[2]);
  if (/^what should i do next$/i.test(text)) return { tool: 'next_task' };
  m = new RegExp(`^(?:list|show) my(?: (${taskViews.join('|')}))? tasks$`, 'i').exec(text);
  if (m) return m[1] ? { tool: 'list_tasks', view: m[1].toLowerCase() } : { tool: 'list_tasks' };
  return undefined;
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
    return { kind: 'text', text: toolResults.map((r) => summariseToolResult(r, calls)).join('\n\n') };
  }
  const text = userBlocks.map(blockText).join('\n');
  return commandReply(text, parseTaskLines(params.system));
}

function commandReply(text: string, tasks: TaskLine[]): Reply {
  const command = parseCommand(text);
  if (!command) return { kind: 'text', text: friendlyReply(text) };
  switch (command.tool) {
    case 'create_task':
      return { kind: 'tool_use', name: 'create_task', input: { title: command.title }, text: 'Adding that task.' };
    case 'complete_task':
    case 'delete_task': {
      const task = findTask(tasks, command.title);
      if (!task) {
        return {
          kind: 'text',
          text: `I couldn't find an open task named "${command.title}". Say "list my tasks" to see what is open.`,
        };
      }
      const lead = command.tool === 'complete_task' ? `Marking "${task.title}" as complete.` : `Deleting "${task.title}".`;
      return { kind: 'tool_use', name: command.tool, input: { id: task.id }, text: lead };
    }
    case 'next_task':
      return { kind: 'tool_use', name: 'next_task', input: {}, text: 'Let me pick your next task.' };
    case 'list_tasks': {
      const input = command.view ? { view: command.view } : {};
      return { kind: 'tool_use', name: 'list_tasks', input, text: 'Let me look at your tasks.' };
    }
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
    '',
    'Set **ANTHROPIC_API_KEY** on the server to talk to Claude itself.',
  ].join('\n');
}

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
function summariseToolResult(block: WireBlock, calls: Map<string, ToolCall>): string {
  const call = typeof block['tool_use_id'] === 'string' ? calls.get(block['tool_use_id']) : undefined;
  const raw = typeof block['content'] === 'string' ? block['content'] : '';
  const result = asRecord(parseJson(raw));
  if (block['is_error'] === true) return `That didn't work: ${stringField(result, 'message') ?? 'the tool failed'}.`;
  const taskTitle = stringField(asRecord(result?.['task']), 'title');
  const title = taskTitle ?? stringField(call?.input, 'title') ?? 'the task';
  switch (call?.name) {
    case 'create_task':
      return `Done — created "${title}".`;
    case 'complete_task':
      return `Done — marked "${title}" as complete.`;
    case 'delete_task':
      return `Done — deleted "${title}". You can restore it from the deleted tasks.`;
    case 'list_tasks':
      return listSummary(result?.['tasks']);
    case 'next_task':
      return taskTitle ? `I'd do **${taskTitle}** next.` : 'Nothing is waiting for you right now. Enjoy the break.';
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
