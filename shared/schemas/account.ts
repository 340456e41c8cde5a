import { z } from 'zod';
import { limits } from '../limits.js';
import { id, text, timeZone } from './common.js';
import { password } from './auth.js';
import type { UserView } from './auth.js';
import type { Task } from './tasks.js';
import type { Conversation, Message } from './chat.js';

export const authRefresh = z.strictObject({ token: text(1, 4096) });
export const userUpdate = z.strictObject({
  fullName: text(0, limits.fullNameMax).optional(),
  timezone: timeZone.optional(),
});
export type UserUpdate = z.infer<typeof userUpdate>;
export const userDelete = z.strictObject({ password });
export const sessionRevoke = z.strictObject({ id });

export interface SessionView {
  id: string;
  createdAt: string;
  lastUsedAt: string;
  userAgent: string | null;
  current: boolean;
}

export interface UserExport {
  user: UserView;
  tasks: Task[];
  conversations: Conversation[];
  messages: Message[];
  /** every session, revoked ones too, with the IP address it was last used from */
  sessions: (Omit<SessionView, 'current'> & { ip: string | null; revokedAt: string | null })[];
}

/** RT-2: the first thing a connected socket hears. */
export interface SessionReady {
  user: UserView;
  sessionId: string;
  /** ISO timestamp */
  tokenExpiresAt: string;
  taskSeq: number;
  nodeId: string;
  serverTime: string;
  /** REM-3 (1.1): the user's reminders due and not dismissed */
  dueReminders: number;
}
