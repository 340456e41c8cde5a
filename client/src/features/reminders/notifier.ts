/**
 * The operating system's notifications for reminders, shown by one tab of the
 * browser only: every tab gets `reminder:due`, so without an election the user
 * would see one notification per open tab.
 *
 * The tab that holds the Web Lock `sam-reminder-notifier` is the notifier; it
 * holds it while signed in, and when it closes the browser hands the lock to
 * the next tab in line. Where Web Locks are missing, the tabs that heard a
 * reminder claim it over a BroadcastChannel and the smallest tab id shows it.
 */
import type { Reminder } from '$shared/schemas/reminders';

const lockName = 'sam-reminder-notifier';
const channelName = 'sam-reminder-notifier';
/** how long the fallback waits for the other tabs' claims; the same push reaches them all within a few ms */
const claimWindowMs = 250;
const claimTtlMs = 30_000;

type ClaimMessage = { type: 'claim'; key: string; tab: string };

export type PermissionStatus = NotificationPermission | 'unsupported';

export function notificationPermission(): PermissionStatus {
  return typeof Notification === 'undefined' ? 'unsupported' : Notification.permission;
}

/** The tag both this page and the service worker give a reminder's notification, so that one replaces the other. */
export const notificationTag = (reminderId: string) => `reminder:${reminderId}`;

export class NotifierElection {
  readonly #tabId = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  #leader = false;
  #stopLock: (() => void) | null = null;
  #channel: BroadcastChannel | null = null;
  /** key → tab ids that claimed it, with when the first claim came */
  #claims = new Map<string, { tabs: Set<string>; at: number }>();

  get leader(): boolean {
    return this.#leader;
  }

  /** Joins the election (idempotent): called while signed in. */
  start(): void {
    if (this.#stopLock || this.#channel) return;
    const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
    if (locks) {
      const abort = new AbortController();
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      locks
        .request(lockName, { signal: abort.signal }, async () => {
          this.#leader = true;
          await held;
          this.#leader = false;
        })
        .catch(() => undefined); // AbortError: stopped while still in line
      this.#stopLock = () => {
        abort.abort();
        release();
      };
      return;
    }
    if (typeof BroadcastChannel !== 'undefined') {
      this.#channel = new BroadcastChannel(channelName);
      this.#channel.onmessage = (e: MessageEvent<ClaimMessage>) => {
        if (e.data?.type === 'claim' && typeof e.data.key === 'string' && typeof e.data.tab === 'string') this.#claim(e.data.key, e.data.tab);
      };
    }
  }

  /** Leaves the election (signed out): another tab, if any, takes over. */
  stop(): void {
    this.#stopLock?.();
    this.#stopLock = null;
    this.#leader = false;
    this.#channel?.close();
    this.#channel = null;
    this.#claims.clear();
  }

  /** Resolves true when this tab is the one to show the notification for `key`. */
  async shouldShow(key: string): Promise<boolean> {
    if (this.#stopLock) return this.#leader;
    const channel = this.#channel;
    if (!channel) return true; // nothing to coordinate with: one tab is all this browser can tell
    this.#claim(key, this.#tabId);
    channel.postMessage({ type: 'claim', key, tab: this.#tabId } satisfies ClaimMessage);
    await new Promise((resolve) => setTimeout(resolve, claimWindowMs));
    const tabs = [...(this.#claims.get(key)?.tabs ?? [])].sort();
    return tabs[0] === this.#tabId;
  }

  #claim(key: string, tab: string): void {
    const now = Date.now();
    for (const [k, c] of this.#claims) if (now - c.at > claimTtlMs) this.#claims.delete(k);
    let entry = this.#claims.get(key);
    if (!entry) this.#claims.set(key, (entry = { tabs: new Set(), at: now }));
    entry.tabs.add(tab);
  }
}

/** The notifications this tab showed itself (no service worker), to close them when the reminder is handled. */
const shownHere = new Map<string, Notification>();

/**
 * Shows the OS notification for `reminder`: through the service worker when
 * one is registered (its click handler focuses the app even after this tab
 * closed), else from the page.
 */
export async function showReminderNotification(reminder: Reminder, body: string): Promise<void> {
  const tag = notificationTag(reminder.id);
  const options: NotificationOptions = { body, tag, data: { reminderId: reminder.id, taskId: reminder.taskId, url: '/' } };
  const registration = await serviceWorkerRegistration();
  if (registration) {
    await registration.showNotification(reminder.title, options);
    return;
  }
  shownHere.get(reminder.id)?.close();
  const notification = new Notification(reminder.title, options);
  notification.onclick = () => {
    window.focus();
    notification.close();
  };
  notification.onclose = () => {
    if (shownHere.get(reminder.id) === notification) shownHere.delete(reminder.id);
  };
  shownHere.set(reminder.id, notification);
}

/** Closes the reminder's OS notification, if this browser shows one: it was snoozed, dismissed or cleared. */
export async function closeReminderNotification(reminderId: string): Promise<void> {
  shownHere.get(reminderId)?.close();
  shownHere.delete(reminderId);
  const registration = await serviceWorkerRegistration();
  if (!registration) return;
  for (const n of await registration.getNotifications({ tag: notificationTag(reminderId) })) n.close();
}

export async function serviceWorkerRegistration(): Promise<ServiceWorkerRegistration | null> {
  if (typeof navigator === 'undefined' || !('serviceWorker' in navigator)) return null;
  try {
    return (await navigator.serviceWorker.getRegistration('/')) ?? null;
  } catch {
    return null; // an insecure context or storage refused
  }
}
