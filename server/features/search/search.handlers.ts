/** The socket handler of search (PROTOCOL §6.2b, CHAT-11). */
import { defineHandler, type HandlersOf } from '../../realtime/define-handler.js';
import type { SearchService } from './search.service.js';

export function searchHandlers(search: SearchService) {
  return {
    search: defineHandler('search', (ctx, query) => search.search(ctx.userId, query)),
  } satisfies HandlersOf<'search'>;
}
