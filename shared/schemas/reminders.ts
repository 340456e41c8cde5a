import { z } from 'zod';
import { id, text, timestamp } from './common.js';
import { limits } from '../limits.js';

/** Reminders (docs/protocol.md §6.1b, REM-1…REM-7). */
export const reminderStates = ['pending', 'due', 'dismissed'] as const;
export type ReminderState = (typeof reminderStates)[number];

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/** REM-7: a reminder may be set at most this far ahead. */
export const reminderMaxAheadMs = limits.remindAtMaxAheadMs;
/** `reminder:snooze`'s `until`: from one minute to 30 days ahead (a few seconds of clock skew forgiven). */
export const snoozeMinAheadMs = MINUTE_MS;
export const snoozeMaxAheadMs = 30 * DAY_MS;
const skewMs = 5_000;

/** A task's `remindAt`: a timestamp at most 5 years ahead (REM-7); in the past it fires at once, late. */
export const remindAt = timestamp.refine((t) => Date.parse(t) <= Date.now() + reminderMaxAheadMs, 'Must be at most 5 years ahead');

export const reminderSnooze = z.strictObject({
  id,
  until: timestamp.refine((t) => {
    const ahead = Date.parse(t) - Date.now();
    return ahead >= snoozeMinAheadMs - skewMs && ahead <= snoozeMaxAheadMs + skewMs;
  }, 'Must be from 1 minute to 30 days ahead'),
});
export type ReminderSnooze = z.infer<typeof reminderSnooze>;
export const reminderById = z.strictObject({ id });

/** A reminder as the wire shows it. */
export interface Reminder {
  id: string;
  taskId: string;
  /** the task's title */
  title: string;
  firesAt: string;
  /** fired more than 5 s after `firesAt` (REM-1's budget: no node ran, or it was set in the past) */
  late: boolean;
  state: ReminderState;
}

/**
 * Web Push (project extension, docs/protocol.md §6.1c): a browser's push
 * subscription as `PushSubscription.toJSON()` gives it.
 */
export const pushSubscribe = z.strictObject({
  endpoint: z.url({ protocol: /^https$/, message: 'Must be an https URL' }).max(2048),
  expirationTime: z.number().nullable().optional(),
  keys: z.strictObject({
    p256dh: text(1, 256),
    auth: text(1, 64),
  }),
});
export type PushSubscribe = z.infer<typeof pushSubscribe>;
export const pushUnsubscribe = z.strictObject({ endpoint: text(1, 2048) });
