/**
 * The user's due reminders (PROTOCOL §6.1b): filled by `reminder:list` on
 * every (re)connect and kept current by the pushes — `reminder:due` adds one
 * (once, however often it comes), `reminder:changed` moves it, and
 * `reminder:cleared` takes it away. Snooze and dismiss go to the server; every
 * tab, this one included, follows the answer and the broadcast. One tab of the
 * browser also shows the operating system's notification, and the browser
 * subscribes to Web Push when the user allows notifications.
 */
import type { Ack } from '$shared/errors';
import type { Reminder } from '$shared/schemas/reminders';
import { tomorrowAt } from '$shared/zoned-time';
import type { Connection } from '../../lib/connection.svelte';
import type { Toasts } from '../../lib/toasts.svelte';
import { describeError } from '../../lib/errors';
import { formatWhen } from './format';
import { closeReminderNotification, notificationPermission, NotifierElection, showReminderNotification, type PermissionStatus } from './notifier';
import { pushSupported, subscribePush, unsubscribePush } from './push';

const MINUTE_MS = 60_000;
const signOutWaitMs = 4_000;

/**
 * The snooze choices a reminder offers: `until` is computed when chosen, in the user's time zone. A button's
 * name says `spoken`, which must contain its visible `label` (WCAG 2.5.3, label in name).
 */
export const snoozeChoices = [
  { key: '10m', label: '10 minutes', spoken: 'for 10 minutes', until: (now: Date) => new Date(now.getTime() + 10 * MINUTE_MS) },
  { key: '1h', label: '1 hour', spoken: 'for 1 hour', until: (now: Date) => new Date(now.getTime() + 60 * MINUTE_MS) },
  { key: 'tomorrow', label: 'Tomorrow 9:00', spoken: 'until tomorrow 9:00', until: (now: Date, timeZone: string) => tomorrowAt(now, { hour: 9, minute: 0 }, timeZone) },
] as const;
export type SnoozeChoice = (typeof snoozeChoices)[number]['key'];

const byFiresAt = (a: Reminder, b: Reminder) => a.firesAt.localeCompare(b.firesAt) || a.id.localeCompare(b.id);

export interface RemindersDeps {
  connection: Connection;
  toasts: Toasts;
  /** the user's IANA time zone: snooze "tomorrow 9:00" and the times shown */
  timeZone: () => string;
}

export class RemindersStore {
  #due = $state.raw<Reminder[]>([]);
  #loaded = $state(false);
  /** `session:ready`'s count, shown until the list arrives */
  #readyCount = $state(0);
  #busy = $state.raw(new Set<string>());
  #permission = $state<PermissionStatus>(notificationPermission());
  #listOpen = $state(false);
  /** what the live region says: the last reminder that fell due */
  #announcement = $state('');

  /** pushes that arrived while a `reminder:list` was on its way: newer than its answer */
  #duringList: Map<string, Reminder | null> | null = null;
  #listRound = 0;
  #election = new NotifierElection();
  /** Web Push was set up (or found not configured) for this sign-in */
  #pushDone = false;
  #pushRunning: Promise<void> | null = null;

  constructor(private readonly deps: RemindersDeps) {
    const c = deps.connection;
    c.on('reminder:due', ({ reminder }) => {
      const known = this.#due.find((r) => r.id === reminder.id);
      this.#apply(reminder);
      // A repeated push of the same firing is not news.
      if (reminder.state === 'due' && known?.firesAt !== reminder.firesAt) {
        this.#announce(reminder);
        void this.#notify(reminder);
      }
    });
    c.on('reminder:changed', ({ reminder }) => this.#apply(reminder));
    c.on('reminder:cleared', ({ id }) => this.#remove(id));
    c.onReady((ready) => {
      this.#readyCount = ready.dueReminders;
      this.#election.start();
      void this.#list();
      void this.#setUpPush();
    });
    void this.#watchPermission();
  }

  /** Due reminders, oldest first. */
  get due(): Reminder[] {
    return this.#due;
  }
  get count(): number {
    return this.#loaded ? this.#due.length : Math.max(this.#readyCount, this.#due.length);
  }
  get loaded(): boolean {
    return this.#loaded;
  }
  get timeZone(): string {
    return this.deps.timeZone();
  }
  /** The browser's notification permission, or 'unsupported'. */
  get permission(): PermissionStatus {
    return this.#permission;
  }
  get announcement(): string {
    return this.#announcement;
  }
  /** The bell's list is open (the toasts step aside). */
  get listOpen(): boolean {
    return this.#listOpen;
  }
  set listOpen(open: boolean) {
    this.#listOpen = open;
  }
  isBusy(id: string): boolean {
    return this.#busy.has(id);
  }
  /** "today 14:30" in the user's time zone. */
  when(reminder: Reminder, now = new Date()): string {
    return formatWhen(reminder.firesAt, this.deps.timeZone(), now);
  }

  async snooze(id: string, choice: SnoozeChoice): Promise<boolean> {
    const option = snoozeChoices.find((c) => c.key === choice);
    if (!option) return false;
    const until = option.until(new Date(), this.deps.timeZone());
    return this.#act(id, 'Could not snooze the reminder', () => this.deps.connection.request('reminder:snooze', { id, until: until.toISOString() }));
  }

  async dismiss(id: string): Promise<boolean> {
    return this.#act(id, 'Could not dismiss the reminder', () => this.deps.connection.request('reminder:dismiss', { id }));
  }

  /** Asks the browser for notification permission (a click's work), then sets up Web Push. */
  async enableNotifications(): Promise<void> {
    if (typeof Notification === 'undefined') return;
    let result: NotificationPermission;
    try {
      result = await Notification.requestPermission();
    } catch {
      result = Notification.permission;
    }
    this.#permission = result;
    if (result === 'granted') {
      this.deps.toasts.show('Notifications are on: reminders will reach you in this browser.', 'success');
      this.#pushDone = false;
      await this.#setUpPush();
    } else if (result === 'denied') {
      this.deps.toasts.show("Notifications are blocked. You can allow them in the browser's site settings.", 'info', 8_000);
    }
  }

  /** Before signing out, while the socket still lives: the server forgets this browser's push subscription. */
  async beforeSignOut(): Promise<void> {
    if (!pushSupported()) return;
    const work = (async () => {
      await this.#pushRunning;
      await unsubscribePush(this.deps.connection);
    })();
    // A push service that does not answer must not hold the logout up.
    await Promise.race([work, new Promise((resolve) => setTimeout(resolve, signOutWaitMs))]);
  }

  /** Signed out: nothing of this user stays, and another tab takes over the notifications. */
  reset(): void {
    this.#listRound++;
    this.#duringList = null;
    this.#due = [];
    this.#loaded = false;
    this.#readyCount = 0;
    this.#busy = new Set();
    this.#listOpen = false;
    this.#announcement = '';
    this.#pushDone = false;
    this.#election.stop();
  }

  async #act(id: string, what: string, send: () => Promise<Ack<{ reminder: Reminder }>>): Promise<boolean> {
    if (this.#busy.has(id)) return false;
    this.#busy = new Set(this.#busy).add(id);
    try {
      const res = await send();
      if (!res.ok) {
        // Gone already (done elsewhere, or its task completed): nothing left to act on.
        if (res.error.code === 'NOT_FOUND') this.#remove(id);
        this.deps.toasts.show(`${what}: ${describeError(res.error)}`, 'error');
        return false;
      }
      this.#apply(res.data.reminder);
      return true;
    } finally {
      const rest = new Set(this.#busy);
      rest.delete(id);
      this.#busy = rest;
    }
  }

  async #list(): Promise<void> {
    const round = ++this.#listRound;
    const during = new Map<string, Reminder | null>();
    this.#duringList = during;
    const res = await this.deps.connection.request('reminder:list', {});
    if (round !== this.#listRound) return; // a newer list (a reconnect) or a sign-out came meanwhile
    this.#duringList = null;
    if (!res.ok) {
      if (res.error.code !== 'UNAVAILABLE') this.deps.toasts.show(`Could not load reminders: ${describeError(res.error)}`, 'error');
      return;
    }
    const next = new Map<string, Reminder>();
    for (const r of res.data.reminders) if (r.state === 'due') next.set(r.id, r);
    for (const [id, r] of during) {
      if (r?.state === 'due') next.set(id, r);
      else next.delete(id);
    }
    this.#due = [...next.values()].sort(byFiresAt);
    this.#loaded = true;
  }

  /** A reminder as the server now has it: listed while due, gone otherwise. */
  #apply(reminder: Reminder): void {
    this.#duringList?.set(reminder.id, reminder);
    if (reminder.state !== 'due') {
      this.#drop(reminder.id);
      return;
    }
    const i = this.#due.findIndex((r) => r.id === reminder.id);
    const known = i >= 0 ? this.#due[i] : undefined;
    if (known && known.firesAt === reminder.firesAt && known.title === reminder.title && known.late === reminder.late) return;
    const next = i >= 0 ? this.#due.with(i, reminder) : [...this.#due, reminder];
    this.#due = next.sort(byFiresAt);
  }

  #remove(id: string): void {
    this.#duringList?.set(id, null);
    this.#drop(id);
  }

  #drop(id: string): void {
    void closeReminderNotification(id);
    if (!this.#due.some((r) => r.id === id)) return;
    this.#due = this.#due.filter((r) => r.id !== id);
  }

  #announce(reminder: Reminder): void {
    const text = `Reminder: ${reminder.title}, ${this.when(reminder)}${reminder.late ? ' (late)' : ''}`;
    // Cleared first, so that the same words said again are announced again.
    this.#announcement = '';
    setTimeout(() => (this.#announcement = text), 50);
  }

  async #notify(reminder: Reminder): Promise<void> {
    this.#permission = notificationPermission();
    if (this.#permission !== 'granted') return;
    if (!(await this.#election.shouldShow(reminder.id))) return;
    const body = `Due ${this.when(reminder)}${reminder.late ? ' (late)' : ''}`;
    try {
      await showReminderNotification(reminder, body);
    } catch (err) {
      console.warn('Could not show the reminder notification', err);
    }
  }

  #setUpPush(): Promise<void> {
    if (this.#pushDone || this.#pushRunning || !pushSupported() || notificationPermission() !== 'granted') return this.#pushRunning ?? Promise.resolve();
    this.#pushRunning = (async () => {
      try {
        await subscribePush(this.deps.connection);
        this.#pushDone = true;
      } catch (err) {
        // In-page reminders and this tab's notifications still work; the next connect tries again.
        console.warn('Web Push is not available for reminders', err);
      }
    })().finally(() => {
      this.#pushRunning = null;
    });
    return this.#pushRunning;
  }

  /** Follows the permission when the user changes it in the browser's settings. */
  async #watchPermission(): Promise<void> {
    try {
      const status = await navigator.permissions?.query({ name: 'notifications' });
      if (status) status.onchange = () => (this.#permission = notificationPermission());
    } catch {
      // no Permissions API: the state is read again when a reminder falls due
    }
  }
}
