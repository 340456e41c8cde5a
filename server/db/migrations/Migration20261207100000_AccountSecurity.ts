import { Migration } from '@mikro-orm/migrations';

export class Migration20261207100000_AccountSecurity extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "mail_outbox" ("id" uuid not null, "recipient" varchar(320) not null, "subject" text not null, "body" text not null, "created_at" timestamptz not null, "attempts" int not null default 0, "next_attempt_at" timestamptz not null, "last_error" text null, constraint "mail_outbox_pkey" primary key ("id"));`);
    this.addSql(`create index "mail_outbox_next_attempt_at_index" on "mail_outbox" ("next_attempt_at");`);

    this.addSql(`create table "security_events" ("id" uuid not null, "at" timestamptz not null, "user_id" uuid null, "email" varchar(320) null, "type" varchar(40) not null, "ip" varchar(64) null, "user_agent" varchar(512) null, "device" varchar(120) null, "network" varchar(64) null, "details" jsonb null, constraint "security_events_pkey" primary key ("id"));`);
    this.addSql(`create index "security_events_at_index" on "security_events" ("at");`);
    this.addSql(`create index "security_events_email_index" on "security_events" ("email");`);
    this.addSql(`create index "security_events_user_id_at_index" on "security_events" ("user_id", "at");`);

    this.addSql(`create table "recovery_codes" ("id" uuid not null, "user_id" uuid not null, "code_hash" varchar(64) not null, "created_at" timestamptz not null, "used_at" timestamptz null, constraint "recovery_codes_pkey" primary key ("id"));`);
    this.addSql(`create index "recovery_codes_user_id_index" on "recovery_codes" ("user_id");`);

    this.addSql(`create table "password_reset_tokens" ("token_hash" varchar(64) not null, "user_id" uuid not null, "created_at" timestamptz not null, "expires_at" timestamptz not null, "used_at" timestamptz null, constraint "password_reset_tokens_pkey" primary key ("token_hash"));`);
    this.addSql(`create index "password_reset_tokens_user_id_index" on "password_reset_tokens" ("user_id");`);
    this.addSql(`create index "password_reset_tokens_expires_at_index" on "password_reset_tokens" ("expires_at");`);

    this.addSql(`create table "mfa_challenges" ("challenge_hash" varchar(64) not null, "user_id" uuid not null, "created_at" timestamptz not null, "expires_at" timestamptz not null, "used_at" timestamptz null, constraint "mfa_challenges_pkey" primary key ("challenge_hash"));`);
    this.addSql(`create index "mfa_challenges_user_id_index" on "mfa_challenges" ("user_id");`);
    this.addSql(`create index "mfa_challenges_expires_at_index" on "mfa_challenges" ("expires_at");`);

    this.addSql(`alter table "security_events" add constraint "security_events_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "recovery_codes" add constraint "recovery_codes_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "password_reset_tokens" add constraint "password_reset_tokens_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "mfa_challenges" add constraint "mfa_challenges_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "users" add column "mfa_secret" text null, add column "mfa_pending_secret" text null, add column "mfa_enabled_at" timestamptz null, add column "mfa_last_step" int null;`);

    // AUTH-18: the security log is append-only; rows leave only by the purge or with their user.
    this.addSql(`create function "security_events_append_only"() returns trigger language plpgsql as $$ begin raise exception 'security_events is append-only'; end $$;`);
    this.addSql(`create trigger "security_events_no_update" before update on "security_events" for each row execute function "security_events_append_only"();`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop function if exists "security_events_append_only"() cascade;`);
    this.addSql(`drop table if exists "mail_outbox" cascade;`);

    this.addSql(`drop table if exists "security_events" cascade;`);

    this.addSql(`drop table if exists "recovery_codes" cascade;`);

    this.addSql(`drop table if exists "password_reset_tokens" cascade;`);

    this.addSql(`drop table if exists "mfa_challenges" cascade;`);

    this.addSql(`alter table "users" drop column "mfa_secret", drop column "mfa_pending_secret", drop column "mfa_enabled_at", drop column "mfa_last_step";`);
  }

}
