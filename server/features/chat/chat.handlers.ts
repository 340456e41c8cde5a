/** Socket handlers for chat and conversations (PROTOCOL §6.2, §6.2b). */
import { defineHandler, type EventsOf, type HandlersOf } from '../../realtime/define-handler.js';
import type { ChatService } from './chat.service.js';

export function chatHandlers(chat: ChatService) {
  return {
    'chat:send': defineHandler('chat:send', (ctx, input) => chat.send(ctx.userId, input), { alsoLimitedBy: 'chat' }),
    'chat:cancel': defineHandler('chat:cancel', (ctx, { messageId }) => chat.cancel(ctx.userId, messageId)),
    'chat:history': defineHandler('chat:history', (ctx, q) => chat.history(ctx.userId, q)),
    // Each starts an answer, so each counts against the chat limit as a send does (RT-6, CHAT-10).
    'chat:edit': defineHandler('chat:edit', (ctx, { messageId, content }) => chat.edit(ctx.userId, messageId, content), { alsoLimitedBy: 'chat' }),
    'chat:regenerate': defineHandler('chat:regenerate', (ctx, { messageId }) => chat.regenerate(ctx.userId, messageId), { alsoLimitedBy: 'chat' }),
    'chat:continue': defineHandler('chat:continue', (ctx, { messageId }) => chat.continue(ctx.userId, messageId), { alsoLimitedBy: 'chat' }),
    'conversation:list': defineHandler('conversation:list', (ctx, q) => chat.listConversations(ctx.userId, q)),
    'conversation:rename': defineHandler('conversation:rename', (ctx, { id, title }) => chat.rename(ctx.userId, id, title)),
    'conversation:delete': defineHandler('conversation:delete', (ctx, { id }) => chat.remove(ctx.userId, id)),
  } satisfies HandlersOf<EventsOf<'chat' | 'conversation'>>;
}
