/** Socket handlers for the nine task events (PROTOCOL §6.1). */
import { requestSchemas as s } from '../../../shared/events.js';
import { defineHandler, type Handler } from '../../realtime/define-handler.js';
import type { TasksService } from './tasks.service.js';

export function taskHandlers(tasks: TasksService): Handler[] {
  return [
    defineHandler('task:create', s['task:create'], async (ctx, input) => ({ task: (await tasks.create(ctx.userId, input)).task })),
    defineHandler('task:update', s['task:update'], (ctx, input) => tasks.update(ctx.userId, input)),
    defineHandler('task:complete', s['task:complete'], (ctx, input) => tasks.complete(ctx.userId, input)),
    defineHandler('task:delete', s['task:delete'], (ctx, { id }) => tasks.remove(ctx.userId, id)),
    defineHandler('task:restore', s['task:restore'], (ctx, { id }) => tasks.restore(ctx.userId, id)),
    defineHandler('task:purge', s['task:purge'], (ctx, { id }) => tasks.purge(ctx.userId, id)),
    defineHandler('task:list', s['task:list'], (ctx, query) => tasks.list(ctx.userId, query)),
    defineHandler('task:next', s['task:next'], (ctx, query) => tasks.next(ctx.userId, query)),
    defineHandler('task:sync', s['task:sync'], (ctx, { since }) => tasks.sync(ctx.userId, since)),
  ] as Handler[];
}
