import { Migration } from '@mikro-orm/migrations';

export class Migration20261129051944_Chat extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "conversations" ("id" uuid not null, "user_id" uuid not null, "title" varchar(200) not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "conversations_pkey" primary key ("id"));`);
    this.addSql(`create index "conversations_user_id_updated_at_index" on "conversations" ("user_id", "updated_at");`);

    this.addSql(`create table "messages" ("id" uuid not null, "conversation_id" uuid not null, "user_id" uuid not null, "role" text check ("role" in ('user', 'assistant')) not null, "content" text not null default '', "status" text check ("status" in ('complete', 'streaming', 'cancelled', 'error', 'interrupted')) not null, "last_seq" int null, "tool_calls" jsonb not null default '[]', "usage" jsonb null, "model" varchar(100) null, "error" jsonb null, "reply_to" uuid null, "node_id" varchar(100) null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "messages_pkey" primary key ("id"));`);
    this.addSql(`create index "messages_status_index" on "messages" ("status");`);
    this.addSql(`create index "messages_conversation_id_created_at_index" on "messages" ("conversation_id", "created_at");`);
    this.addSql(`create index "messages_user_id_status_index" on "messages" ("user_id", "status");`);

    this.addSql(`alter table "conversations" add constraint "conversations_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "messages" add constraint "messages_conversation_id_foreign" foreign key ("conversation_id") references "conversations" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "messages" add constraint "messages_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "messages" drop constraint "messages_conversation_id_foreign";`);

    this.addSql(`drop table if exists "conversations" cascade;`);

    this.addSql(`drop table if exists "messages" cascade;`);
  }

}
