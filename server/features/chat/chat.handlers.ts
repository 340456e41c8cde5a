/** Socket handlers for chat and conversations (PROTOCOL §6.2). */
import { requestSchemas as s } from '../../../shared/events.js';
import { defineHandler, type Handler } from '../../realtime/define-handler.js';
import type { ChatService } from './chat.service.js';

export function chatHandlers(chat: ChatService): Handler[] {
  return [
    defineHandler('chat:send', s['chat:send'], (ctx, input) => chat.send(ctx.userId, input), { alsoLimitedBy: 'chat' }),
    defineHandler('chat:cancel', s['chat:cancel'], (ctx, { messageId }) => chat.cancel(ctx.userId, messageId)),
    defineHandler('chat:history', s['chat:history'], (ctx, q) => chat.history(ctx.userId, q)),
    defineHandler('conversation:list', s['conversation:list'], (ctx, q) => chat.listConversations(ctx.userId, q)),
    defineHandler('conversation:rename', s['conversation:rename'], (ctx, { id, title }) => chat.rename(ctx.userId, id, title)),
    defineHandler('conversation:delete', s['conversation:delete'], (ctx, { id }) => chat.remove(ctx.userId, id)),
  ] as Handler[];
}
