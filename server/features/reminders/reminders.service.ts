/**
 * Reminders (PROTOCOL §6.1b): the user's list, snooze and dismiss, and one
 * round of firing for the claim loop (`server/jobs/reminders.ts`). A reminder
 * is set, moved and cleared with its task (`tasks.service.ts`), never here.
 */
import { appError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { ReminderHooks } from '../../hooks.js';
import type { Reminder } from '../../../shared/schemas/reminders.js';
import type { ReminderRow, RemindersRepository } from './reminders.repository.js';

/** Where reminders' events go (the realtime layer sends them to `user:<id>`); implementations must not throw. */
export interface ReminderEvents {
  due(userId: string, data: { reminder: Reminder }): void;
  changed(userId: string, data: { reminder: Reminder }): void;
  cleared(userId: string, data: { id: string }): void;
}

/** Reaches a user outside the app's tabs (Web Push); best effort, must not throw. */
export interface ReminderNotifier {
  notify(userId: string, reminder: Reminder): unknown;
}

export interface RemindersService {
  /** REM-3: due and not dismissed, oldest first. */
  list(userId: string): Promise<Reminder[]>;
  snooze(userId: string, id: string, until: Date): Promise<Reminder>;
  dismiss(userId: string, id: string): Promise<Reminder>;
  /** Claims and fires up to `limit` reminders (REM-1, REM-2); resolves the number claimed. */
  fireDue(limit: number): Promise<number>;
}

/**
 * A node has this long to deliver what it claimed before another node may fire
 * it again (REM-2): delivering is a broadcast and one UPDATE, so a healthy node
 * is done in well under a second.
 */
export const FIRING_LEASE_MS = 15_000;
/** REM-1 gives delivery 5 seconds: a reminder fired later than that is late. */
export const LATE_AFTER_MS = 5_000;

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const reminderNotFound = () => appError(ErrorCode.NOT_FOUND, { message: 'Reminder not found' });

/** The wire shape: a reminder being delivered is due. */
export function toWireReminder(row: ReminderRow): Reminder {
  return {
    id: row.id,
    taskId: row.taskId,
    title: row.title,
    firesAt: row.firesAt.toISOString(),
    late: row.late,
    state: row.state === 'firing' ? 'due' : row.state,
  };
}

export function createRemindersService(deps: {
  reminders: RemindersRepository;
  events: ReminderEvents;
  notifier?: ReminderNotifier | undefined;
  hooks?: Pick<ReminderHooks, 'onFired'> | undefined;
  logger: Logger;
}): RemindersService {
  const { reminders: repo, events, logger } = deps;

  function owned(id: string): string {
    if (!uuidPattern.test(id)) throw reminderNotFound();
    return id.toLowerCase();
  }

  return {
    async list(userId) {
      return (await repo.listDue(userId)).map(toWireReminder);
    },

    async snooze(userId, id, until) {
      const row = await repo.snooze(userId, owned(id), until);
      if (!row) throw reminderNotFound();
      const reminder = toWireReminder(row);
      events.changed(userId, { reminder });
      return reminder;
    },

    async dismiss(userId, id) {
      const row = await repo.dismiss(userId, owned(id));
      if (!row) throw reminderNotFound();
      events.cleared(userId, { id: row.id });
      return toWireReminder(row);
    },

    async fireDue(limit) {
      const claimed = await repo.claimDue(limit, FIRING_LEASE_MS, LATE_AFTER_MS);
      if (claimed.length === 0) return 0;
      const now = Date.now();
      for (const row of claimed) {
        const reminder = toWireReminder(row);
        events.due(row.userId, { reminder });
        deps.hooks?.onFired((now - row.firesAt.getTime()) / 1000, row.late);
        if (deps.notifier) {
          void Promise.resolve()
            .then(() => deps.notifier!.notify(row.userId, reminder))
            .catch((err: unknown) => logger.warn({ err: (err as Error).message, job: 'reminders' }, 'reminder notification failed'));
        }
      }
      const ids = claimed.map((r) => r.id);
      const delivered = await repo.markDelivered(ids);
      // Snoozed, dismissed or cleared (its task changed or went) while it was being fired: the tabs were just
      // told it is due, so they hear how it is now.
      const missed = claimed.filter((r) => !delivered.has(r.id));
      if (missed.length > 0) {
        const now = new Map((await repo.byIds(missed.map((r) => r.id))).map((r) => [r.id, r]));
        for (const row of missed) {
          const current = now.get(row.id);
          if (current && current.state === 'pending') events.changed(row.userId, { reminder: toWireReminder(current) });
          else if (!current || current.state === 'dismissed') events.cleared(row.userId, { id: row.id });
        }
      }
      return claimed.length;
    },
  };
}
