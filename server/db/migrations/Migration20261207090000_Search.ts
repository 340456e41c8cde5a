import { Migration } from '@mikro-orm/migrations';

/**
 * CHAT-11: full-text search. Each searched table gains a `search` tsvector that PostgreSQL keeps (a stored
 * generated column, so no write path can forget it) and a GIN index on (user_id, search): every search is one
 * user's, and with both in one index a search reads only that user's matching entries, whoever else has the
 * same words and however many rows the user has. A GIN index over a uuid needs btree_gin (contrib, shipped with
 * PostgreSQL, a trusted extension: the database owner may create it).
 *
 * The 'simple' configuration (lower-cased words, no stemming, no stop words): Sam's users write in any language,
 * and 'english' would stem French or German words as English and drop English stop words from every query.
 * Adding the columns rewrites the three tables under an exclusive lock: seconds per million rows.
 *
 * New entries wait in each index's pending list (fastupdate) until it holds 256 kB, not the default 4 MB: every
 * search reads the whole list, and a long one made PostgreSQL's generic plan for a user with 100,000 messages
 * read all of them through (user_id, status) instead (80–400 ms a search, against 4–8 ms; bench/README.md).
 */
export class Migration20261207090000_Search extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create extension if not exists btree_gin;`);
    this.addSql(`alter table "tasks" add column "search" tsvector generated always as (setweight(to_tsvector('simple'::regconfig, title), 'A'::"char") || setweight(to_tsvector('simple'::regconfig, description), 'B'::"char")) stored;`);
    this.addSql(`alter table "messages" add column "search" tsvector generated always as (setweight(to_tsvector('simple'::regconfig, content), 'B'::"char")) stored;`);
    this.addSql(`alter table "conversations" add column "search" tsvector generated always as (setweight(to_tsvector('simple'::regconfig, (title)::text), 'A'::"char")) stored;`);
    this.addSql(`create index "tasks_search_index" on "tasks" using gin ("user_id", "search") with (gin_pending_list_limit = 256);`);
    this.addSql(`create index "messages_search_index" on "messages" using gin ("user_id", "search") with (gin_pending_list_limit = 256);`);
    this.addSql(`create index "conversations_search_index" on "conversations" using gin ("user_id", "search") with (gin_pending_list_limit = 256);`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "tasks" drop column "search";`);
    this.addSql(`alter table "messages" drop column "search";`);
    this.addSql(`alter table "conversations" drop column "search";`);
  }

}
