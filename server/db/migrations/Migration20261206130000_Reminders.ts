import { Migration } from '@mikro-orm/migrations';

export class Migration20261206130000_Reminders extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "reminders" ("id" uuid not null, "user_id" uuid not null, "task_id" uuid not null, "fires_at" timestamptz not null, "state" text check ("state" in ('pending', 'firing', 'due', 'dismissed')) not null, "late" boolean not null default false, "claimed_until" timestamptz null, "fired_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "reminders_pkey" primary key ("id"));`);
    this.addSql(`alter table "reminders" add constraint "reminders_task_id_unique" unique ("task_id");`);

    this.addSql(`alter table "reminders" add constraint "reminders_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "reminders" add constraint "reminders_task_id_foreign" foreign key ("task_id") references "tasks" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "tasks" add column "remind_at" timestamptz null, add column "reminder_id" uuid null;`);

    // The claim loop's two questions (what fell due, whose lease ran out) and the due reminders of a user
    // (reminder:list, session:ready) each read a small partial index, however many reminders are done.
    this.addSql(`create index "reminders_pending_fires_at_index" on "reminders" ("fires_at") where "state" = 'pending';`);
    this.addSql(`create index "reminders_firing_claimed_until_index" on "reminders" ("claimed_until") where "state" = 'firing';`);
    this.addSql(`create index "reminders_due_user_id_index" on "reminders" ("user_id", "fires_at") where "state" in ('firing', 'due');`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "reminders" cascade;`);

    this.addSql(`alter table "tasks" drop column "remind_at", drop column "reminder_id";`);
  }

}
