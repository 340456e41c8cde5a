/** Socket handlers for reminders (PROTOCOL §6.1b). */
import { defineHandler, type EventsOf, type HandlersOf } from '../../realtime/define-handler.js';
import type { RemindersService } from './reminders.service.js';

export function reminderHandlers(reminders: RemindersService) {
  return {
    'reminder:list': defineHandler('reminder:list', async (ctx) => ({ reminders: await reminders.list(ctx.userId) })),
    'reminder:snooze': defineHandler('reminder:snooze', async (ctx, { id, until }) => ({ reminder: await reminders.snooze(ctx.userId, id, new Date(until)) })),
    'reminder:dismiss': defineHandler('reminder:dismiss', async (ctx, { id }) => ({ reminder: await reminders.dismiss(ctx.userId, id) })),
  } satisfies HandlersOf<EventsOf<'reminder'>>;
}
