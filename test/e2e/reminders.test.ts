/**
 * Reminders in Chromium (PROTOCOL §6.1b, issue 20): one user in two tabs of
 * one browser, against the built client and a real server. A reminder fires
 * in both tabs within 5 s of its time, the bell counts it, exactly one tab
 * shows the operating system's notification, and a snooze or a dismissal in
 * one tab clears it in the other. The "Remind me" field is read on the user's
 * wall clock (Asia/Kolkata, UTC+5:30), not the browser's (UTC).
 *
 * The browser's Notification constructor is wrapped by an init script that
 * only records each call (and then makes the real notification): that is how
 * the test counts the OS notifications across tabs.
 *
 * The service worker (client/public/sw.js) runs against a server with VAPID
 * keys made at run time. Playwright's contexts are incognito profiles, where
 * Chrome refuses push subscriptions, so push messages are delivered to the
 * worker through the DevTools protocol (ServiceWorker.deliverPushMessage), as
 * the browser's push service would; the notifications are read back with
 * registration.getNotifications().
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { Task } from '../../shared/schemas/tasks.js';
import type { Reminder } from '../../shared/schemas/reminders.js';
import webpush from 'web-push';
import { e2eEnv, logInInUi, taskItem, useBrowserApp, waitLive } from '../support/browser.js';
import { connectReady, tabTracker, type Tab } from '../support/sockets.js';
import { signUp } from '../support/users.js';

const timeZone = 'Asia/Kolkata';

const countNotifications = `
  (() => {
    const Native = window.Notification;
    window.__osNotifications = [];
    if (!Native) return;
    window.Notification = class extends Native {
      constructor(title, options) {
        window.__osNotifications.push({ title, tag: options && options.tag });
        super(title, options);
      }
    };
  })();
`;

const osNotifications = (page: Page) => page.evaluate('window.__osNotifications') as Promise<{ title: string; tag: string }[]>;

/** The bell's accessible name, e.g. "Reminders: 1 due". */
const bellLabel = (page: Page) => page.getByTestId('reminder-bell').getAttribute('aria-label');
const toast = (page: Page, title: string) => page.getByTestId('reminder-toast').filter({ has: page.getByTestId('reminder-title').getByText(title, { exact: true }) });

/** The date (`YYYY-MM-DD`) in Kolkata `days` from now: the zone is UTC+5:30 all year, so this needs no library. */
function kolkataDate(days: number): string {
  return new Date(Date.now() + 5.5 * 3_600_000 + days * 86_400_000).toISOString().slice(0, 10);
}

describe('reminders in a browser', () => {
  const app = useBrowserApp(() => e2eEnv());
  let tab1: Page;
  let tab2: Page;
  let tab3: Page | undefined;
  let user: { email: string; password: string };
  /** the same user's socket from the test, to set reminders up and read what the server holds */
  let api: Tab;
  const sockets = tabTracker();

  beforeAll(async () => {
    const signedUp = await signUp(app.server.url, { fullName: 'Rem Inder', timezone: timeZone });
    user = signedUp;
    api = sockets.track(await connectReady(app.server.url, signedUp.auth.accessToken));
    await app.context.grantPermissions(['notifications'], { origin: new URL(app.server.url).origin });
    await app.context.addInitScript({ content: countNotifications });
    tab1 = await app.newPage();
    await tab1.goto('/');
    await logInInUi(tab1, user);
    tab2 = await app.newPage();
    await tab2.goto('/');
    await waitLive(tab2);
  });

  // Registered after the app's afterAll, so it runs before it: the test's socket closes before the server stops.
  afterAll(() => sockets.closeAll());

  it('[REM-7] reads "Remind me" on the user\'s wall clock, shows it on the task in every tab, and clears it', async () => {
    const title = 'water the plants';
    const date = kolkataDate(1);
    await tab1.getByRole('button', { name: 'More…' }).click();
    await tab1.getByTestId('task-form-title').fill(title);
    await tab1.getByTestId('task-form-remind').fill(`${date}T09:30`);
    await tab1.getByRole('button', { name: 'Create task' }).click();

    // 09:30 in Kolkata is 04:00 UTC; the browser runs in UTC and must not read it as 09:30 UTC.
    const stored = async () => ((await api.call('task:list', { view: 'active' })).tasks as Task[]).find((t) => t.title === title);
    await expect.poll(async () => (await stored())?.remindAt).toBe(`${date}T04:00:00.000Z`);
    const chip = taskItem(tab2, title).getByTestId('task-remind');
    await chip.waitFor();
    expect(await chip.textContent()).toContain('09:30');
    expect(await chip.textContent()).toMatch(/tomorrow/);

    // Editing shows the same wall time, and Clear removes the reminder.
    const item = tab1.locator(`[data-testid="task-item"][data-task-id="${(await stored())?.id}"]`);
    await item.getByTestId('edit-task').click();
    expect(await item.getByTestId('task-form-remind').inputValue()).toBe(`${date}T09:30`);
    await item.getByTestId('task-form-remind-clear').click();
    await item.getByRole('button', { name: 'Save', exact: true }).click();
    await taskItem(tab2, title).getByTestId('task-remind').waitFor({ state: 'detached' });
    expect((await stored())?.remindAt).toBeNull();
    expect(await bellLabel(tab1)).toBe('Reminders: 0 due');
  });

  it('[REM-1][REM-4] fires in both tabs within 5 s, one OS notification, and Snooze 10 min in one tab clears both', async () => {
    const title = 'call the dentist';
    const firesAt = Date.now() + 3_000;
    const { task } = await api.call('task:create', { title, remindAt: new Date(firesAt).toISOString() });
    expect(task.remindAt).toBe(new Date(firesAt).toISOString());
    expect(await bellLabel(tab1)).toBe('Reminders: 0 due');

    const seenAt = await Promise.all(
      [tab1, tab2].map(async (page) => {
        await toast(page, title).waitFor({ timeout: 12_000 });
        return Date.now();
      }),
    );
    for (const at of seenAt) expect(at - firesAt).toBeLessThanOrEqual(5_000);
    for (const page of [tab1, tab2]) {
      await expect.poll(() => bellLabel(page)).toBe('Reminders: 1 due');
      expect(await page.getByTestId('reminder-count').textContent()).toBe('1');
      expect(await toast(page, title).getAttribute('data-late')).toBe('false');
      await expect.poll(() => page.getByTestId('reminder-announcement').textContent()).toContain(`Reminder: ${title}`);
    }
    const due = (await api.waitFor('reminder:due', (d) => d.reminder.taskId === task.id)).reminder as Reminder;

    // Exactly one tab of the browser showed the OS notification (the other shows only the toast).
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const shown = [...(await osNotifications(tab1)), ...(await osNotifications(tab2))];
    expect(shown).toEqual([{ title, tag: `reminder:${due.id}` }]);

    // Snooze from the keyboard in tab 1: gone from tab 2 too, and moved ten minutes on.
    const snoozedAt = Date.now();
    await toast(tab1, title).getByTestId('snooze-10m').press('Enter');
    await toast(tab2, title).waitFor({ state: 'detached', timeout: 5_000 });
    await toast(tab1, title).waitFor({ state: 'detached' });
    for (const page of [tab1, tab2]) await expect.poll(() => bellLabel(page)).toBe('Reminders: 0 due');
    const changed = (await api.waitFor('reminder:changed', (d) => d.reminder.id === due.id)).reminder as Reminder;
    expect(changed.state).toBe('pending');
    const ahead = Date.parse(changed.firesAt) - snoozedAt;
    expect(ahead).toBeGreaterThan(9 * 60_000);
    expect(ahead).toBeLessThanOrEqual(10 * 60_000 + 5_000);
    expect((await api.call('reminder:list', {})).reminders).toEqual([]);
  });

  it('[REM-3][REM-7] a reminder set in the past fires at once, late; a new tab lists it; Dismiss in one tab clears every tab', async () => {
    const title = 'pay the rent';
    await api.call('task:create', { title, remindAt: new Date(Date.now() - 3_600_000).toISOString() });
    for (const page of [tab1, tab2]) await toast(page, title).waitFor({ timeout: 10_000 });
    expect(await toast(tab1, title).getAttribute('data-late')).toBe('true');
    expect(await toast(tab1, title).getByTestId('reminder-late').textContent()).toBe('late');

    // A tab opened now finds it through reminder:list, and the bell lists it.
    tab3 = await app.newPage();
    await tab3.goto('/');
    await waitLive(tab3);
    await toast(tab3, title).waitFor();
    await tab3.getByTestId('reminder-bell').click();
    const list = tab3.getByTestId('reminder-list');
    await list.getByTestId('reminder-item').filter({ hasText: title }).waitFor();
    expect(await tab3.getByTestId('reminder-bell').getAttribute('aria-expanded')).toBe('true');
    // The list replaces the toasts while open; Escape closes it and gives the focus back to the bell.
    expect(await tab3.getByTestId('reminder-toasts').count()).toBe(0);
    await list.getByTestId('dismiss').focus();
    await tab3.keyboard.press('Escape');
    await list.waitFor({ state: 'detached' });
    expect(await tab3.evaluate('document.activeElement?.dataset.testid')).toBe('reminder-bell');

    await toast(tab2, title).getByTestId('dismiss').click();
    for (const page of [tab1, tab2, tab3]) {
      await toast(page, title).waitFor({ state: 'detached', timeout: 5_000 });
      await expect.poll(() => bellLabel(page)).toBe('Reminders: 0 due');
    }
    expect((await api.call('reminder:list', {})).reminders).toEqual([]);
  });

  it('[REM-1] without Web Locks the tabs agree over a BroadcastChannel: still one OS notification', async () => {
    // Another browser profile where navigator.locks is missing (older browsers), signed in as the same user.
    const other = await app.newContext();
    await other.context.grantPermissions(['notifications'], { origin: new URL(app.server.url).origin });
    await other.context.addInitScript({ content: `${countNotifications}; delete Navigator.prototype.locks;` });
    const [a, b] = [await other.newPage(), await other.newPage()];
    await a.goto('/');
    await logInInUi(a, user);
    await b.goto('/');
    await waitLive(b);
    expect(await a.evaluate('typeof navigator.locks')).toBe('undefined');

    const title = 'feed the cat';
    await api.call('task:create', { title, remindAt: new Date(Date.now() + 1_000).toISOString() });
    for (const page of [a, b]) await toast(page, title).waitFor({ timeout: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const shown = [...(await osNotifications(a)), ...(await osNotifications(b))].filter((n) => n.title === title);
    expect(shown).toHaveLength(1);
    await toast(a, title).getByTestId('dismiss').click();
    for (const page of [a, b, tab1, tab2]) await toast(page, title).waitFor({ state: 'detached', timeout: 5_000 });
    expect(other.watch.consoleErrors).toEqual([]);
    expect(other.watch.pageErrors).toEqual([]);
    expect(other.watch.cspViolations).toEqual([]);
  });

  it('leaves no console error, page error or CSP violation behind', () => {
    expect(app.watch.consoleErrors).toEqual([]);
    expect(app.watch.pageErrors).toEqual([]);
    expect(app.watch.cspViolations).toEqual([]);
  });
});

describe('the service worker of Web Push', () => {
  const app = useBrowserApp(() => {
    const keys = webpush.generateVAPIDKeys();
    return e2eEnv({ VAPID_PUBLIC_KEY: keys.publicKey, VAPID_PRIVATE_KEY: keys.privateKey, VAPID_SUBJECT: 'mailto:ops@example.test' });
  });
  let page: Page;
  let api: Tab;
  let origin: string;
  const sockets = tabTracker();
  /** the service worker's registration id, for the DevTools protocol's push delivery */
  let registrationId: string;

  /** Delivers a push message to the service worker, as the browser's push service would. */
  async function deliverPush(data: object): Promise<void> {
    const cdp = await app.context.newCDPSession(page);
    try {
      await cdp.send('ServiceWorker.enable');
      await cdp.send('ServiceWorker.deliverPushMessage', { origin, registrationId, data: JSON.stringify(data) });
    } finally {
      await cdp.detach();
    }
  }
  const notifications = () =>
    page.evaluate(
      `navigator.serviceWorker.getRegistration('/').then((r) => r.getNotifications()).then((ns) => ns.map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data })))`,
    ) as Promise<{ title: string; body: string; tag: string; data: { reminderId: string; url: string } }[]>;

  beforeAll(async () => {
    origin = new URL(app.server.url).origin;
    const user = await signUp(app.server.url, { timezone: timeZone });
    api = sockets.track(await connectReady(app.server.url, user.auth.accessToken));
    // Playwright's contexts are incognito profiles, where Chrome refuses push subscriptions and says so on the console.
    app.watch.allow.push(/does not support the Push API in incognito mode/);
    await app.context.grantPermissions(['notifications'], { origin });
    page = await app.newPage();
    await page.goto('/');
    await logInInUi(page, user);
  });

  afterAll(() => sockets.closeAll());

  it('is registered from the site root, under the CSP, once notifications are allowed and the server has a VAPID key', async () => {
    // Read in one step: on a busy machine the registration can be between workers from one read to the next.
    await expect
      .poll(() => page.evaluate(`navigator.serviceWorker.getRegistration('/').then((r) => (r && r.active ? [r.scope, r.active.scriptURL] : null))`), { timeout: 15_000 })
      .toEqual([`${origin}/`, `${origin}/sw.js`]);
    const res = await app.context.request.get('/sw.js');
    expect(res.status()).toBe(200);
    expect(res.headers()['content-type']).toMatch(/javascript/);
    expect(res.headers()['content-security-policy']).toContain("worker-src 'self'");

    const cdp = await app.context.newCDPSession(page);
    const found = new Promise<string>((resolve) =>
      cdp.on('ServiceWorker.workerRegistrationUpdated', (e: { registrations: { registrationId: string; scopeURL: string; isDeleted: boolean }[] }) => {
        const reg = e.registrations.find((r) => r.scopeURL === `${origin}/` && !r.isDeleted);
        if (reg) resolve(reg.registrationId);
      }),
    );
    await cdp.send('ServiceWorker.enable');
    registrationId = await found;
    await cdp.detach();
  });

  it('shows nothing for a push while a tab of the app is visible, and the reminder when none is open', async () => {
    await deliverPush({ title: 'seen in the tab', body: 'Due today', reminderId: 'r-visible', taskId: 't1', url: '/' });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect((await notifications()).filter((n) => n.data?.reminderId === 'r-visible')).toEqual([]);

    await page.goto('about:blank');
    await deliverPush({ title: 'nobody looking', body: 'Due today 09:00', reminderId: 'r-away', taskId: 't2', url: 'https://evil.example/phish' });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await page.goto('/');
    await waitLive(page);
    const shown = (await notifications()).filter((n) => n.data?.reminderId === 'r-away');
    // Tagged like the page's own notification for the reminder; a foreign url is replaced by the app's.
    expect(shown).toEqual([{ title: 'nobody looking', body: 'Due today 09:00', tag: 'reminder:r-away', data: { reminderId: 'r-away', taskId: 't2', url: `${origin}/` } }]);
  });

  it('[REM-4] the notifier tab shows a due reminder through the service worker and closes it when snoozed', async () => {
    const title = 'renew the passport';
    await api.call('task:create', { title, remindAt: new Date(Date.now() + 1_000).toISOString() });
    await toast(page, title).waitFor({ timeout: 10_000 });
    const due = (await api.waitFor('reminder:due', (d) => d.reminder.title === title)).reminder as Reminder;
    await expect.poll(async () => (await notifications()).filter((n) => n.tag === `reminder:${due.id}`).map((n) => n.title)).toEqual([title]);
    await toast(page, title).getByTestId('snooze-1h').click();
    await toast(page, title).waitFor({ state: 'detached' });
    await expect.poll(async () => (await notifications()).filter((n) => n.tag === `reminder:${due.id}`)).toEqual([]);
    expect(app.watch.consoleErrors).toEqual([]);
    expect(app.watch.pageErrors).toEqual([]);
    expect(app.watch.cspViolations).toEqual([]);
  });
});
