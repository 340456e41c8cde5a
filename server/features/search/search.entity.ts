/**
 * The `search` column and index that tasks, messages and conversations share (CHAT-11), as the entities declare
 * them so that the schema diff matches the migration (`Migration20261207090000_Search`).
 */

/**
 * The text search configuration of every column and query: 'simple' lower-cases words and neither stems nor drops
 * stop words, so that it treats every language alike (see the migration).
 */
export const searchConfig = 'simple';

/** The generation expression of a tsvector over weighted columns, written as PostgreSQL prints it back. */
export function tsvector(...parts: [column: string, weight: 'A' | 'B'][]): string {
  const terms = parts.map(([column, weight]) => `setweight(to_tsvector('${searchConfig}'::regconfig, ${column}), '${weight}'::"char")`);
  return `(${terms.join(' || ')}) stored`;
}

/**
 * One GIN index over the owner and the words (btree_gin), so that a search reads only its user's entries; a short
 * pending list (see the migration).
 */
export function searchIndex(table: string): { name: string; expression: string } {
  const name = `${table}_search_index`;
  return { name, expression: `create index "${name}" on "${table}" using gin ("user_id", "search") with (gin_pending_list_limit = 256)` };
}
