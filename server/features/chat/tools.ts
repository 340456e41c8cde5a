/**
 * The assistant's tools over the user's tasks (CHAT-4) and history (CHAT-11).
 * Inputs are the shared zod schemas, turned into JSON Schema for Claude; every
 * call goes through the tasks or search service as the user of the verified
 * token, never an id from the model.
 */
import { z } from 'zod';
import type Anthropic from '@anthropic-ai/sdk';
import { id } from '../../../shared/schemas/common.js';
import { search } from '../../../shared/schemas/chat.js';
import { taskById, taskComplete, taskCreate, taskList, taskNext, taskPatch, type Task } from '../../../shared/schemas/tasks.js';
import { ErrorCode, toAppError, validationError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { TasksService } from '../tasks/tasks.service.js';
import type { SearchService } from '../search/search.service.js';
import type { ToolUndo } from '../../../shared/schemas/chat.js';
import { undoComplete, undoCreate, undoDelete, undoRestore, undoUpdate } from './undo.js';

/**
 * Reminders ride on `remindAt` of create_task and update_task, not on
 * set_reminder/clear_reminder tools: a task has at most one reminder (§6.1b),
 * so setting, moving and clearing it is one field of the task, checked by the
 * same schema as `task:update` (REM-7), and the model has two tools fewer to
 * choose between.
 */
const remindAtInput = taskPatch.shape.remindAt.describe(
  'When to remind the user: ISO 8601 with the UTC offset, e.g. 2026-12-01T17:30:00+09:00; at most 5 years ahead. null clears the reminder.',
);

const toolInputs = {
  create_task: taskCreate.omit({ id: true }).extend({ remindAt: remindAtInput }),
  update_task: taskPatch.extend({ id, expectedVersion: z.int().min(1).optional(), remindAt: remindAtInput }),
  complete_task: taskComplete.omit({ expectedVersion: true }),
  delete_task: taskById,
  restore_task: taskById,
  list_tasks: taskList,
  next_task: taskNext,
  search_history: search,
} as const;

/** What the tools run through. */
export interface ToolServices {
  tasks: TasksService;
  search: SearchService;
}

/** Hits a `search_history` call returns when it names no `limit`: enough to answer from, few enough to read. */
const SEARCH_HISTORY_LIMIT = 10;

export type ToolName = keyof typeof toolInputs;
export const toolNames = Object.keys(toolInputs) as ToolName[];

const descriptions: Record<ToolName, string> = {
  create_task:
    'Create a task for the user, with a reminder when `remindAt` is given. Dates are YYYY-MM-DD in the user\'s time zone. Intensity 1 (light) to 5 (heavy) is guessed from the title when omitted.',
  update_task:
    'Change fields of one of the user\'s tasks by id. Only the given fields change. Set `remindAt` to set or move the task\'s reminder, null to clear it.',
  complete_task: 'Mark one of the user\'s tasks completed, with optional notes. A recurring task schedules its next occurrence.',
  delete_task: 'Move one of the user\'s tasks to the trash (it can be restored).',
  restore_task: 'Bring a task back from the trash with the status it had.',
  list_tasks: 'List the user\'s tasks: view active (default), upcoming (due within `days`), waiting, completed or deleted; optionally one project.',
  next_task: 'Pick the task the user should do next, optionally limited to light, medium or heavy work.',
  search_history:
    'Search the user\'s own conversations, messages and tasks (the trash included) by their words, to find what was said or noted before. Words match whole, the last one also as a prefix; "a phrase" in quotes, -word excludes, `or` between words matches either. Results come best first, with the matched words marked «…» in `snippet`; optionally only some kinds.',
};

/** JSON Schema for Claude: no `$schema`, no long regex patterns (the formats say enough). */
function toInputSchema(schema: z.ZodType): Anthropic.Tool.InputSchema {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  const strip = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(strip);
    if (node && typeof node === 'object') {
      return Object.fromEntries(
        Object.entries(node as Record<string, unknown>)
          .filter(([k]) => k !== '$schema' && k !== 'pattern')
          .map(([k, v]) => [k, strip(v)]),
      );
    }
    return node;
  };
  return strip(json) as Anthropic.Tool.InputSchema;
}

export const toolDefinitions: Anthropic.Tool[] = toolNames.map((name) => ({
  name,
  description: descriptions[name],
  input_schema: toInputSchema(toolInputs[name]),
}));

/** A compact view of a task for the model. */
const brief = (t: Task) => ({
  id: t.id,
  title: t.title,
  status: t.status,
  deadline: t.deadline,
  intensity: t.intensity,
  project: t.project,
  waitingOn: t.waitingOn,
  recurrence: t.recurrence,
  remindAt: t.remindAt,
  version: t.version,
});

export interface ToolOutcome {
  ok: boolean;
  /** what the model is told */
  result: unknown;
  /** CHAT-15: how to revert the task change the call made, for the user's tabs only (the model is not told) */
  undo?: ToolUndo | undefined;
}

/**
 * Runs one tool call for `userId`; failures are results for the model, not exceptions. An unexpected one is
 * INTERNAL, logged with the `errorId` its result carries (GEN-1).
 */
export async function runTool(services: ToolServices, userId: string, name: string, input: unknown, logger: Logger): Promise<ToolOutcome> {
  if (!(name in toolInputs)) return { ok: false, result: { code: 'NOT_FOUND', message: `Unknown tool ${name}` } };
  const parsed = toolInputs[name as ToolName].safeParse(input ?? {});
  if (!parsed.success) {
    const wire = validationError(parsed.error).toWire();
    return { ok: false, result: { code: wire.code, message: wire.message, issues: wire.issues } };
  }
  try {
    return { ok: true, ...(await execute(services, userId, name as ToolName, parsed.data)) };
  } catch (err) {
    const appErr = toAppError(err);
    const wire = appErr.toWire();
    if (appErr.code !== ErrorCode.INTERNAL) return { ok: false, result: { code: wire.code, message: wire.message } };
    const errorId = appErr.details?.errorId;
    logger.error({ err: appErr.cause, errorId, tool: name, userId }, 'tool failed');
    return { ok: false, result: { code: wire.code, message: wire.message, details: { errorId } } };
  }
}

async function execute({ tasks, search }: ToolServices, userId: string, name: ToolName, input: any): Promise<Omit<ToolOutcome, 'ok'>> {
  switch (name) {
    case 'create_task': {
      const { task, created } = await tasks.create(userId, input);
      return { result: { task: brief(task) }, undo: created ? undoCreate(task) : undefined };
    }
    case 'update_task': {
      const { id: taskId, expectedVersion, ...patch } = input as z.output<(typeof toolInputs)['update_task']>;
      const { task, previous } = await tasks.update(userId, { id: taskId, expectedVersion, patch });
      return { result: { task: brief(task) }, undo: undoUpdate(previous, task) };
    }
    case 'complete_task': {
      const { task, next, previous } = await tasks.complete(userId, input);
      return { result: { task: brief(task), next: next ? brief(next) : null }, undo: undoComplete(previous, task, next) };
    }
    case 'delete_task': {
      const { task, previous } = await tasks.remove(userId, input.id);
      return { result: { task: brief(task) }, undo: undoDelete(previous, task) };
    }
    case 'restore_task': {
      const { task, previous } = await tasks.restore(userId, input.id);
      return { result: { task: brief(task) }, undo: undoRestore(previous, task) };
    }
    case 'list_tasks':
      return { result: { tasks: (await tasks.list(userId, input)).tasks.slice(0, 50).map(brief) } };
    case 'next_task': {
      const next = await tasks.next(userId, input);
      return { result: { task: next.task ? brief(next.task) : null, score: next.score } };
    }
    case 'search_history': {
      const hits = await search.hits(userId, { ...input, limit: input.limit ?? SEARCH_HISTORY_LIMIT });
      return {
        result: { results: hits.map(({ rank: _rank, taskStatus, ...hit }) => (taskStatus === null ? hit : { ...hit, status: taskStatus })) },
      };
    }
  }
}
