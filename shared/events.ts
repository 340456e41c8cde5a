/**
 * The Socket.IO contract (docs/protocol.md §5–§7), written once for server and client.
 * `requestSchemas` holds the payload schema of every client→server event;
 * `AckData` the data of its successful ack. docs/protocol.md's event tables
 * are generated from this file and `schemas/`: `npm run docs:protocol`.
 */
import type { z } from 'zod';
import type { Ack } from './errors.js';
import { emptyPayload } from './schemas/common.js';
import * as tasks from './schemas/tasks.js';
import * as chat from './schemas/chat.js';
import * as account from './schemas/account.js';
import * as ops from './schemas/ops.js';
import * as reminders from './schemas/reminders.js';
import * as security from './schemas/security.js';
import type { UserView } from './schemas/auth.js';
import type { RevocationReason } from './constants.js';

export const requestSchemas = {
  'task:create': tasks.taskCreate,
  'task:update': tasks.taskUpdate,
  'task:complete': tasks.taskComplete,
  'task:delete': tasks.taskByIdAt,
  'task:restore': tasks.taskByIdAt,
  'task:purge': tasks.taskByIdAt,
  'task:list': tasks.taskList,
  'task:next': tasks.taskNext,
  'task:sync': tasks.taskSync,
  'reminder:list': emptyPayload,
  'reminder:snooze': reminders.reminderSnooze,
  'reminder:dismiss': reminders.reminderById,
  'push:key': emptyPayload,
  'push:subscribe': reminders.pushSubscribe,
  'push:unsubscribe': reminders.pushUnsubscribe,
  'chat:send': chat.chatSend,
  'chat:cancel': chat.chatCancel,
  'chat:history': chat.chatHistory,
  'chat:edit': chat.chatEdit,
  'chat:regenerate': chat.chatRegenerate,
  'chat:continue': chat.chatContinue,
  search: chat.search,
  'conversation:list': chat.conversationList,
  'conversation:rename': chat.conversationRename,
  'conversation:delete': chat.conversationDelete,
  'auth:refresh': account.authRefresh,
  'user:me': emptyPayload,
  'user:update': account.userUpdate,
  'user:export': emptyPayload,
  'user:delete': account.userDelete,
  'session:list': emptyPayload,
  'session:revoke': account.sessionRevoke,
  'user:password': security.userPassword,
  'mfa:setup': emptyPayload,
  'mfa:enable': security.mfaConfirm,
  'mfa:disable': security.mfaConfirm,
  'mfa:recovery-codes': security.mfaConfirm,
  'security:log': security.securityLogPage,
} as const;

/** Events of the admin-only `/ops` namespace. */
export const opsRequestSchemas = {
  'ops:users': ops.opsUsers,
  'ops:disconnect-user': ops.opsUserAction,
  'ops:revoke-user': ops.opsUserAction,
} as const;

export type RequestEvent = keyof typeof requestSchemas;
export type OpsRequestEvent = keyof typeof opsRequestSchemas;
export const requestEvents = Object.keys(requestSchemas) as RequestEvent[];
export const opsRequestEvents = Object.keys(opsRequestSchemas) as OpsRequestEvent[];

export interface AckData {
  'task:create': { task: tasks.Task };
  'task:update': { task: tasks.Task };
  'task:complete': { task: tasks.Task; next: tasks.Task | null };
  'task:delete': { task: tasks.Task };
  'task:restore': { task: tasks.Task };
  'task:purge': { id: string };
  'task:list': { tasks: tasks.Task[]; seq: number };
  'task:next': { task: tasks.Task | null; score: number | null };
  'task:sync': tasks.TaskSyncResult;
  'reminder:list': { reminders: reminders.Reminder[] };
  'reminder:snooze': { reminder: reminders.Reminder };
  'reminder:dismiss': { reminder: reminders.Reminder };
  /** the VAPID public key (base64url), or null when Web Push is not configured */
  'push:key': { publicKey: string | null };
  'push:subscribe': Record<string, never>;
  'push:unsubscribe': Record<string, never>;
  'chat:send': { conversationId: string; userMessage: chat.Message; assistantMessageId: string };
  'chat:cancel': { message: chat.Message };
  'chat:history': { messages: chat.Message[]; hasMore: boolean };
  'chat:edit': { conversationId: string; userMessage: chat.Message; assistantMessageId: string };
  'chat:regenerate': { conversationId: string; assistantMessageId: string };
  'chat:continue': { conversationId: string; assistantMessageId: string };
  search: { results: chat.SearchResult[] };
  'conversation:list': { conversations: chat.Conversation[] };
  'conversation:rename': { conversation: chat.Conversation };
  'conversation:delete': { id: string };
  'auth:refresh': { expiresAt: string };
  'user:me': { user: UserView };
  'user:update': { user: UserView };
  'user:export': account.UserExport;
  'user:delete': Record<string, never>;
  'session:list': { sessions: account.SessionView[] };
  'session:revoke': Record<string, never>;
  /** AUTH-15: every other session is revoked */
  'user:password': Record<string, never>;
  'mfa:setup': security.MfaSetup;
  /** AUTH-14: shown once; every other session is revoked */
  'mfa:enable': { recoveryCodes: string[] };
  'mfa:disable': Record<string, never>;
  /** AUTH-14: the old codes stop working */
  'mfa:recovery-codes': { recoveryCodes: string[] };
  'security:log': { events: security.SecurityLogEntry[]; hasMore: boolean };
}

export interface OpsAckData {
  'ops:users': { users: ops.OnlineUser[] };
  'ops:disconnect-user': { sockets: number };
  'ops:revoke-user': { sessions: number };
}

/** The payload a client sends for `E` (before defaults are applied). */
export type RequestPayload<E extends RequestEvent> = z.input<(typeof requestSchemas)[E]>;
/** The payload a handler receives for `E` (parsed). */
export type ParsedPayload<E extends RequestEvent> = z.output<(typeof requestSchemas)[E]>;
export type OpsParsedPayload<E extends OpsRequestEvent> = z.output<(typeof opsRequestSchemas)[E]>;

export type ClientToServerEvents = {
  [E in RequestEvent]: (payload: RequestPayload<E>, ack: (res: Ack<AckData[E]>) => void) => void;
};

export type OpsClientToServerEvents = {
  [E in OpsRequestEvent]: (payload: z.input<(typeof opsRequestSchemas)[E]>, ack: (res: Ack<OpsAckData[E]>) => void) => void;
};

export interface ServerToClientEvents {
  'session:ready': (data: account.SessionReady) => void;
  'session:revoked': (data: { reason: RevocationReason }) => void;
  'auth:expired': (data: { expiredAt: string }) => void;
  'user:changed': (data: { user: UserView }) => void;
  'task:changed': (data: tasks.TaskChanged) => void;
  'task:removed': (data: tasks.TaskRemoved) => void;
  'reminder:due': (data: { reminder: reminders.Reminder }) => void;
  'reminder:changed': (data: { reminder: reminders.Reminder }) => void;
  'reminder:cleared': (data: { id: string }) => void;
  'conversation:changed': (data: { conversation: chat.Conversation }) => void;
  'conversation:removed': (data: { id: string }) => void;
  'chat:message': (data: { message: chat.Message }) => void;
  'chat:delta': (data: chat.ChatDelta) => void;
  'chat:tool': (data: { conversationId: string; messageId: string; toolCall: chat.ToolCall }) => void;
  'chat:done': (data: { conversationId: string; message: chat.Message }) => void;
  /** CHAT-10: every message of the conversation after `afterMessageId` is gone */
  'chat:truncated': (data: { conversationId: string; afterMessageId: string }) => void;
  /** §6.3b: a sign-in from a device and network the account had not used, to the user's other tabs */
  'security:new-device': (data: { session: security.NewDeviceSession }) => void;
}

export interface OpsServerToClientEvents {
  'ops:snapshot': (data: ops.OpsSnapshot) => void;
  'auth:expired': (data: { expiredAt: string }) => void;
  /** RT-5 in `/ops` too: the session was revoked, or (`role_changed`) the account is no longer an admin */
  'session:revoked': (data: { reason: RevocationReason }) => void;
}

export type { Ack };
