import { Migration } from '@mikro-orm/migrations';

/** CHAT-13: why each answer stopped; answers stored before it have none. */
export class Migration20261206142528_StopReason extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "messages" add column "stop_reason" text check ("stop_reason" in ('end_turn', 'max_tokens', 'tool_use', 'stop_sequence', 'pause_turn', 'refusal', 'model_context_window_exceeded')) null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "messages" drop column "stop_reason";`);
  }

}
