/** Socket handlers for the nine task events (PROTOCOL §6.1). */
import { defineHandler, type EventsOf, type HandlersOf } from '../../realtime/define-handler.js';
import type { TasksService } from './tasks.service.js';

export function taskHandlers(tasks: TasksService) {
  return {
    'task:create': defineHandler('task:create', async (ctx, input) => ({ task: (await tasks.create(ctx.userId, input)).task })),
    'task:update': defineHandler('task:update', (ctx, input) => tasks.update(ctx.userId, input)),
    'task:complete': defineHandler('task:complete', (ctx, input) => tasks.complete(ctx.userId, input)),
    'task:delete': defineHandler('task:delete', (ctx, { id }) => tasks.remove(ctx.userId, id)),
    'task:restore': defineHandler('task:restore', (ctx, { id }) => tasks.restore(ctx.userId, id)),
    'task:purge': defineHandler('task:purge', (ctx, { id }) => tasks.purge(ctx.userId, id)),
    'task:list': defineHandler('task:list', (ctx, query) => tasks.list(ctx.userId, query)),
    'task:next': defineHandler('task:next', (ctx, query) => tasks.next(ctx.userId, query)),
    'task:sync': defineHandler('task:sync', (ctx, { since }) => tasks.sync(ctx.userId, since)),
  } satisfies HandlersOf<EventsOf<'task'>>;
}
