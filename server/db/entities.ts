/** Every entity of the schema; the ORM and the migration generator read this list. */
import { UserSchema } from '../features/auth/user.entity.js';
import { RefreshTokenSchema, SessionSchema } from '../features/auth/session.entity.js';
import { TaskSchema, TaskTombstoneSchema } from '../features/tasks/task.entity.js';
import { ConversationSchema, MessageSchema } from '../features/chat/chat.entity.js';
import { ReminderSchema } from '../features/reminders/reminder.entity.js';
import { PushSubscriptionSchema } from '../features/reminders/push-subscription.entity.js';
import { MailOutboxSchema, MfaChallengeSchema, PasswordResetTokenSchema, RecoveryCodeSchema, SecurityEventSchema } from '../features/security/security.entity.js';

export const entities = [UserSchema, SessionSchema, RefreshTokenSchema, TaskSchema, TaskTombstoneSchema, ConversationSchema, MessageSchema, ReminderSchema, PushSubscriptionSchema, RecoveryCodeSchema, MfaChallengeSchema, PasswordResetTokenSchema, SecurityEventSchema, MailOutboxSchema];
