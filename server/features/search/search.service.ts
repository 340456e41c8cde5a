/**
 * Search (CHAT-11): the user's own tasks, messages and conversation titles, ranked, with «…»-marked snippets.
 * The socket event and the assistant's `search_history` tool both come here, always with the verified user.
 */
import { searchKinds, type SearchQuery, type SearchResult } from '../../../shared/schemas/chat.js';
import type { TaskStatus } from '../../../shared/schemas/tasks.js';
import type { SearchRepository, SearchRow } from './search.repository.js';

/** Results when the request names no `limit`. */
export const DEFAULT_SEARCH_LIMIT = 20;

/** A result as the server knows it: the wire's, and a task's status (the assistant is told what sits in the trash). */
export type SearchHit = SearchResult & { taskStatus: TaskStatus | null };

export type SearchService = ReturnType<typeof createSearchService>;

export function createSearchService({ search }: { search: SearchRepository }) {
  const hits = async (userId: string, { query, kinds, limit }: SearchQuery): Promise<SearchHit[]> => {
    const rows = await search.search(userId, { query, kinds: kinds ?? searchKinds, limit: limit ?? DEFAULT_SEARCH_LIMIT });
    return rows.map(toHit);
  };
  return {
    hits,
    /** `search`: the wire's results. */
    async search(userId: string, query: SearchQuery): Promise<{ results: SearchResult[] }> {
      return { results: (await hits(userId, query)).map(({ taskStatus: _internal, ...result }) => result) };
    },
  };
}

function toHit(row: SearchRow): SearchHit {
  return {
    kind: row.kind,
    id: row.id,
    conversationId: row.conversationId,
    title: row.title,
    snippet: row.snippet,
    at: row.at.toISOString(),
    rank: row.rank,
    taskStatus: row.taskStatus,
  };
}
