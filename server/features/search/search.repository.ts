/**
 * Every SQL statement of search (CHAT-11): one statement over the user's tasks, messages and conversation titles,
 * through each table's GIN index on (user_id, search) (`Migration20261207090000_Search`).
 *
 * Any text is a safe query: `websearch_to_tsquery` never raises a syntax error (quotes, `or`, `-word`; every other
 * character is a separator), and the statement answers no rows when nothing searchable is left (only separators,
 * or only excluded words, which would otherwise read every row of the user).
 */
import type { SearchKind } from '../../../shared/schemas/chat.js';
import type { TaskStatus } from '../../../shared/schemas/tasks.js';
import type { Sql } from '../../db/postgres.js';
import { searchConfig } from './search.entity.js';

export interface SearchRow {
  kind: SearchKind;
  id: string;
  conversationId: string | null;
  title: string;
  snippet: string;
  /** the task's or message's last change, the conversation's last message */
  at: Date;
  rank: number;
  /** a task's status (the assistant is told a hit is in the trash); null for the other kinds */
  taskStatus: TaskStatus | null;
}

export interface SearchParams {
  query: string;
  kinds: readonly SearchKind[];
  limit: number;
}

/**
 * `ts_headline`'s options: the matched words marked «…», at most two short fragments. ShortWord=2 keeps two-letter
 * words at a fragment's edges. The text's own « and » are written ‹ and › first, so that every « » of a snippet is
 * a mark.
 */
const HEADLINE_OPTIONS = 'StartSel=«, StopSel=», MaxWords=14, MinWords=5, ShortWord=2, MaxFragments=2, FragmentDelimiter=" … "';
/** `ts_rank_cd` normalisation: divided by 1 + log(length), so a long answer does not win by length alone (1), scaled to 0..1 (32). */
const RANK_NORMALISATION = 1 | 32;

export type SearchRepository = ReturnType<typeof createSearchRepository>;

export function createSearchRepository(sql: Sql) {
  const config = sql.unsafe(`'${searchConfig}'::regconfig`);
  const headline = sql.unsafe(`'${HEADLINE_OPTIONS}'`);
  const normalisation = sql.unsafe(String(RANK_NORMALISATION));
  /** The statement's parameters, in the order of its `input` (`explain` passes them again to EXECUTE). */
  const inputsOf = (userId: string, { query, kinds, limit }: SearchParams) =>
    [userId, kinds.includes('task'), kinds.includes('message'), kinds.includes('conversation'), limit, query] as const;

  /**
   * The search statement. The query's last word also matches as a prefix when it has three characters or more and
   * is not excluded (`meet` finds "meeting": a palette searches while the word is typed). Each kind's best `limit`
   * hits by rank, then by recency, are merged, and only the `limit` kept get their title and snippet.
   */
  const statement = (q: Sql, [userId, tasks, messages, conversations, limit, query]: ReturnType<typeof inputsOf>) => q<SearchRow[]>`
    with input as materialized (
      select ${userId}::uuid as user_id, ${tasks}::boolean as tasks, ${messages}::boolean as messages, ${conversations}::boolean as conversations,
             ${limit}::int as lim,
             case when w::text ~ '(^|[ (])''[^'']{3,}''$' then (w::text || ':*')::tsquery else w end as query
        from websearch_to_tsquery(${config}, ${query}::text) as w
    ), usable as materialized (
      select * from input where numnode(query) > 0 and querytree(query) <> 'T'
    ), hits as (
      (select 'task'::text as kind, t.id, null::uuid as conversation_id, ts_rank_cd(t.search, u.query, ${normalisation}) as rank, t.updated_at as at
         from usable u join tasks t on t.user_id = u.user_id and t.search @@ u.query
        where u.tasks
        order by rank desc, at desc, t.id limit (select lim from input))
      union all
      (select 'message'::text, m.id, m.conversation_id, ts_rank_cd(m.search, u.query, ${normalisation}) as rank, m.updated_at as at
         from usable u join messages m on m.user_id = u.user_id and m.search @@ u.query
        where u.messages
        order by rank desc, at desc, m.id limit (select lim from input))
      union all
      (select 'conversation'::text, c.id, c.id, ts_rank_cd(c.search, u.query, ${normalisation}) as rank, c.updated_at as at
         from usable u join conversations c on c.user_id = u.user_id and c.search @@ u.query
        where u.conversations
        order by rank desc, at desc, c.id limit (select lim from input))
    ), top as (
      select * from hits order by rank desc, at desc, id limit (select lim from input)
    )
    select h.kind, h.id, h.conversation_id, h.rank, h.at, coalesce(t.title, c.title, '') as title, t.status as task_status,
           case h.kind
             -- a task's snippet comes from its description when the words are there, else from its title
             when 'task' then case when position('«' in d.snippet) > 0 then d.snippet else ts_headline(${config}, translate(t.title, '«»', '‹›'), u.query, ${headline}) end
             when 'message' then ts_headline(${config}, translate(m.content, '«»', '‹›'), u.query, ${headline})
             else ts_headline(${config}, translate(c.title, '«»', '‹›'), u.query, ${headline})
           end as snippet
      from top h cross join usable u
      left join tasks t on h.kind = 'task' and t.id = h.id and t.user_id = u.user_id
      left join messages m on h.kind = 'message' and m.id = h.id and m.user_id = u.user_id
      left join conversations c on c.id = h.conversation_id and c.user_id = u.user_id
      left join lateral (select ts_headline(${config}, translate(t.description, '«»', '‹›'), u.query, ${headline}) as snippet where t.description <> '') d on true
     order by h.rank desc, h.at desc, h.id`;

  return {
    /** The user's best hits for `query`, best first; none when the query has no searchable word. */
    search(userId: string, params: SearchParams): Promise<SearchRow[]> {
      return statement(sql, inputsOf(userId, params));
    },

    /**
     * The plan the search statement runs with. The pool's connections plan generically (`plan_cache_mode`,
     * server/db/postgres.ts), and a plain EXPLAIN with values would show a plan made for them, so this prepares
     * the statement and explains its execution.
     */
    async explain(userId: string, params: SearchParams): Promise<string> {
      const inputs = inputsOf(userId, params);
      const { string: text } = (await statement(sql, inputs).describe()) as unknown as { string: string };
      const conn = await sql.reserve();
      try {
        await conn.unsafe(`prepare sam_search_plan as ${text}`);
        // EXECUTE's arguments cannot be parameters of the protocol: PostgreSQL quotes them itself (%L).
        const [u, t, m, c, limit, query] = inputs;
        const [{ execute }] = await conn<[{ execute: string }]>`
          select format('execute sam_search_plan(%L::uuid, %L::boolean, %L::boolean, %L::boolean, %L::int, %L::text)',
                        ${u}::text, ${t}::boolean, ${m}::boolean, ${c}::boolean, ${limit}::int, ${query}::text) as execute`;
        const rows = await conn.unsafe(`explain (costs off) ${execute}`).values();
        return rows.map(([line]) => String(line)).join('\n');
      } finally {
        await conn.unsafe('deallocate sam_search_plan').catch(() => undefined);
        conn.release();
      }
    },
  };
}
