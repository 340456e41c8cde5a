import { Migration } from '@mikro-orm/migrations';

export class Migration20261206110000_RefreshGrace extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "refresh_tokens" add column "grace_used_at" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "refresh_tokens" drop column "grace_used_at";`);
  }

}
