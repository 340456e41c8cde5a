import { Migration } from '@mikro-orm/migrations';

export class Migration20261129051039_Tasks extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "task_tombstones" ("id" uuid not null, "user_id" uuid not null, "task_id" uuid not null, "seq" int not null, "purged_at" timestamptz not null, constraint "task_tombstones_pkey" primary key ("id"));`);
    this.addSql(`create index "task_tombstones_user_id_seq_index" on "task_tombstones" ("user_id", "seq");`);
    this.addSql(`create index "task_tombstones_purged_at_index" on "task_tombstones" ("purged_at");`);

    this.addSql(`create table "tasks" ("id" uuid not null, "user_id" uuid not null, "title" text not null, "description" text not null default '', "deadline" date null, "intensity" smallint not null, "status" text check ("status" in ('not_started', 'in_progress', 'waiting_on', 'completed', 'deleted')) not null, "project" varchar(200) null, "waiting_on" varchar(200) null, "dependencies" uuid[] not null, "recurrence" jsonb null, "series_day" smallint null, "next_occurrence_id" uuid null, "status_before_delete" text check ("status_before_delete" in ('not_started', 'in_progress', 'waiting_on', 'completed', 'deleted')) null, "version" int not null, "seq" int not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "completed_at" timestamptz null, "deleted_at" timestamptz null, constraint "tasks_pkey" primary key ("id"));`);
    this.addSql(`create index "tasks_user_id_seq_index" on "tasks" ("user_id", "seq");`);
    this.addSql(`create index "tasks_user_id_status_index" on "tasks" ("user_id", "status");`);

    this.addSql(`alter table "task_tombstones" add constraint "task_tombstones_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "tasks" add constraint "tasks_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "users" add column "tombstone_floor_seq" int not null default 0;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "task_tombstones" cascade;`);

    this.addSql(`drop table if exists "tasks" cascade;`);

    this.addSql(`alter table "users" drop column "tombstone_floor_seq";`);
  }

}
