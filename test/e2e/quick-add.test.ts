/**
 * Quick-add in plain words and the keyboard shortcuts, in Chromium (issue 20
 * items 5 and 6), against the built client and a real server. The user lives
 * in Pacific/Auckland while the browser runs in the machine's zone, so the
 * example's "fri 5pm" must be read on the user's wall clock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { Task } from '../../shared/schemas/tasks.js';
import { e2eEnv, logInInUi, taskItem, useBrowserApp } from '../support/browser.js';
import { connectReady, tabTracker, type Tab } from '../support/sockets.js';
import { signUp } from '../support/users.js';

const timeZone = 'Pacific/Auckland';
const example = 'call mom fri 5pm #family !4 every week';

/** The wall clock of `instant` in Auckland, read with Intl (independently of the client's code). */
function aucklandWall(instant: Date): { date: string; weekday: string; time: string } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', weekday: 'long', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
      .formatToParts(instant)
      .map((p) => [p.type, p.value]),
  );
  return { date: `${parts.year}-${parts.month}-${parts.day}`, weekday: parts.weekday!, time: `${parts.hour}:${parts.minute}` };
}

/** The coming Friday in Auckland: today when it is Friday before 17:00, else the next one. */
function comingFriday(now: Date): string {
  const wall = aucklandWall(now);
  const weekdays = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
  let days = (5 - weekdays.indexOf(wall.weekday) + 7) % 7;
  if (days === 0 && wall.time >= '17:00') days = 7;
  return new Date(Date.parse(`${wall.date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

// Page scripts are strings: this file is type-checked without the DOM library.
const overlayOpen = (page: Page) => page.getByTestId('shortcuts-overlay').evaluate((d) => (d as unknown as { open: boolean }).open);
const focusedId = (page: Page) => page.evaluate<string>("document.activeElement?.id ?? ''");
/** Leaves no field focused, as when the user clicks an empty part of the page. */
const blur = (page: Page) => page.evaluate('document.activeElement?.blur()');
const focusInOverlay = (page: Page) => page.evaluate<boolean>(`!!document.activeElement?.closest('[data-testid="shortcuts-overlay"]')`);

describe('quick-add and keyboard shortcuts in a browser', () => {
  const app = useBrowserApp(() => e2eEnv());
  let page: Page;
  /** the same user's socket, to read what the server stored */
  let api: Tab;
  const sockets = tabTracker();
  const stored = async (title: string) => ((await api.call('task:list', { view: 'active' })).tasks as Task[]).find((t) => t.title === title);

  beforeAll(async () => {
    const user = await signUp(app.server.url, { fullName: 'Quick Adder', timezone: timeZone });
    api = sockets.track(await connectReady(app.server.url, user.auth.accessToken));
    page = await app.newPage();
    await page.goto('/');
    await logInInUi(page, user);
  });

  // Registered after the app's afterAll, so it runs first: the socket closes before the server stops.
  afterAll(() => sockets.closeAll());

  it('previews the example as it is typed, and Enter creates the task with all of it', async () => {
    const friday = comingFriday(new Date());
    const input = page.getByRole('textbox', { name: 'New task' });
    expect(await input.getAttribute('data-testid')).toBe('quick-add');
    await input.fill(example);

    const preview = page.getByTestId('quick-add-preview');
    const chip = (kind: string) => preview.locator(`[data-part="${kind}"]`).textContent();
    await expect.poll(() => chip('title')).toBe('Title: call mom');
    const day = new Date(`${friday}T00:00:00Z`).toLocaleDateString('en-US', { timeZone: 'UTC', month: 'short', day: 'numeric' });
    expect((await chip('deadline'))?.trim()).toBe(`Due Friday, ${day}`);
    expect((await chip('time'))?.trim()).toBe('Remind at 17:00');
    expect((await chip('project'))?.trim()).toBe('#family');
    expect((await chip('intensity'))?.trim()).toBe('intensity 4');
    expect((await chip('recurrence'))?.trim()).toBe('↻ Repeats every week');

    await input.press('Enter');
    const item = taskItem(page, 'call mom');
    await item.waitFor();
    expect(await item.textContent()).toContain('#family');
    await expect.poll(() => input.inputValue()).toBe('');
    await preview.waitFor({ state: 'detached' });

    const task = await stored('call mom');
    expect(task).toMatchObject({ project: 'family', intensity: 4, deadline: friday, recurrence: { type: 'weekly', interval: 1, endDate: null } });
    // Friday 17:00 on the user's wall clock, whatever the browser's zone.
    expect(aucklandWall(new Date(task!.remindAt!))).toEqual({ date: friday, weekday: 'Friday', time: '17:00' });
  });

  it('opens the shortcuts overlay with ? from the page, keeps focus in it, closes it with Escape; ? in quick-add is text', async () => {
    await blur(page);
    await page.keyboard.press('?');
    const overlay = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
    await overlay.waitFor();
    expect(await overlay.getAttribute('data-testid')).toBe('shortcuts-overlay');
    const rows = await overlay.getByTestId('shortcut').allTextContents();
    for (const words of ['Show these shortcuts', 'Focus the chat box', 'Focus quick-add', 'Start a new chat', 'Select the next task', 'Complete the selected task']) {
      expect(rows.some((r) => r.includes(words))).toBe(true);
    }
    // Focus is inside the modal and stays there.
    const inside = () => focusInOverlay(page);
    expect(await inside()).toBe(true);
    await page.keyboard.press('Tab');
    expect(await inside()).toBe(true);
    await page.keyboard.press('Shift+Tab');
    expect(await inside()).toBe(true);
    await page.keyboard.press('Escape');
    await overlay.waitFor({ state: 'hidden' });
    expect(await overlayOpen(page)).toBe(false);

    // Typed in a field, ? and the letters are text; Escape clears quick-add.
    const input = page.getByTestId('quick-add');
    await input.focus();
    await page.keyboard.type('why? jxq');
    expect(await input.inputValue()).toBe('why? jxq');
    expect(await overlayOpen(page)).toBe(false);
    expect(await page.locator('[data-testid="task-item"][aria-current="true"]').count()).toBe(0);
    await page.keyboard.press('Escape');
    expect(await input.inputValue()).toBe('');

    // With a modifier held, nothing fires either.
    await blur(page);
    await page.keyboard.press('Control+/');
    expect(await focusedId(page)).toBe('');
  });

  it('focuses the chat box with /, quick-add with q, and starts a new chat with c', async () => {
    await blur(page);
    await page.keyboard.press('/');
    await expect.poll(() => focusedId(page)).toBe('composer-input');
    await blur(page);
    await page.keyboard.press('q');
    await expect.poll(() => focusedId(page)).toBe('quick-add');
    expect(await page.getByTestId('quick-add').inputValue()).toBe('');
    await blur(page);
    await page.keyboard.press('c');
    await expect.poll(() => focusedId(page)).toBe('composer-input');
    expect(await page.getByTestId('chat-title').textContent()).toBe('New chat');
  });

  it('moves the selection with j and k and completes the selected task with x', async () => {
    const input = page.getByTestId('quick-add');
    await input.fill('water the plants');
    await input.press('Enter');
    await taskItem(page, 'water the plants').waitFor();
    const items = page.getByTestId('task-item');
    await expect.poll(() => items.count()).toBe(2);
    const [first, second] = await items.evaluateAll((lis) => lis.map((li) => li.getAttribute('data-task-id')));
    const selected = () => page.locator('[data-testid="task-item"][aria-current="true"]').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-task-id')));

    await blur(page);
    await page.keyboard.press('j');
    await expect.poll(selected).toEqual([first]);
    await page.keyboard.press('j');
    await expect.poll(selected).toEqual([second]);
    await page.keyboard.press('k');
    await expect.poll(selected).toEqual([first]);
    const title = await page.locator(`[data-task-id="${first}"]`).getByTestId('task-title').textContent();

    await page.keyboard.press('x');
    await page.locator(`[data-testid="task-item"][data-task-id="${first}"]`).waitFor({ state: 'detached' });
    await expect.poll(() => page.getByTestId('count-completed').textContent()).toBe('1');
    const done = ((await api.call('task:list', { view: 'completed' })).tasks as Task[]).find((t) => t.id === first);
    expect(done).toMatchObject({ status: 'completed', title });
    // The selection goes on to the task that followed.
    await expect.poll(selected).toEqual([second]);
    await expect.poll(() => page.getByTestId('shortcut-announcement').textContent()).toBe(`Completed ${title}`);
  });

  it('ran with no dialog, no foreign request, no CSP violation and no console error', () => {
    expect(app.watch.dialogs).toEqual([]);
    expect(app.watch.foreignRequests).toEqual([]);
    expect(app.watch.cspViolations).toEqual([]);
    expect(app.watch.consoleErrors).toEqual([]);
    expect(app.watch.pageErrors).toEqual([]);
  });
});
