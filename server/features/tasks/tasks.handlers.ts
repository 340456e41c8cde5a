/** Socket handlers for the nine task events (PROTOCOL §6.1). */
import { defineHandler, type EventsOf, type HandlersOf } from '../../realtime/define-handler.js';
import type { TasksService } from './tasks.service.js';

export function taskHandlers(tasks: TasksService) {
  return {
    'task:create': defineHandler('task:create', async (ctx, input) => ({ task: (await tasks.create(ctx.userId, input)).task })),
    'task:update': defineHandler('task:update', async (ctx, input) => ({ task: (await tasks.update(ctx.userId, input)).task })),
    'task:complete': defineHandler('task:complete', async (ctx, input) => {
      const { task, next } = await tasks.complete(ctx.userId, input);
      return { task, next };
    }),
    'task:delete': defineHandler('task:delete', async (ctx, { id, expectedVersion }) => ({ task: (await tasks.remove(ctx.userId, id, expectedVersion)).task })),
    'task:restore': defineHandler('task:restore', async (ctx, { id, expectedVersion }) => ({ task: (await tasks.restore(ctx.userId, id, expectedVersion)).task })),
    'task:purge': defineHandler('task:purge', (ctx, { id, expectedVersion }) => tasks.purge(ctx.userId, id, expectedVersion)),
    'task:list': defineHandler('task:list', (ctx, query) => tasks.list(ctx.userId, query)),
    'task:next': defineHandler('task:next', (ctx, query) => tasks.next(ctx.userId, query)),
    'task:sync': defineHandler('task:sync', (ctx, { since }) => tasks.sync(ctx.userId, since)),
  } satisfies HandlersOf<EventsOf<'task'>>;
}
