/**
 * The Ctrl/⌘-K search palette in Chromium (issue 21 item 2, CHAT-11), against the built client and a real server:
 * it searches as the user types, the arrow keys and Enter go to a hit, a task hit shows the task in the tasks
 * panel (its view, selected and marked), a message hit opens its conversation, Escape closes, snippets are text
 * with <mark>, never the server's HTML, and axe finds no WCAG A/AA violation in the open palette in either theme.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { e2eEnv, logInInUi, screenshot, taskItem, useBrowserApp } from '../support/browser.js';
import { connectReady, tabTracker, type Tab } from '../support/sockets.js';
import { signUp } from '../support/users.js';

const axeSource = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

// Page scripts are strings or casts: this file is type-checked without the DOM library.
const paletteOpen = (page: Page) => page.getByTestId('search-palette').evaluate((d) => (d as unknown as { open: boolean }).open);
const activeTestId = (page: Page) => page.evaluate<string>("document.activeElement?.getAttribute('data-testid') ?? ''");

describe('the search palette in a browser', () => {
  const app = useBrowserApp(() => e2eEnv());
  let page: Page;
  let api: Tab;
  const sockets = tabTracker();
  const ids = { task: '', conversation: '', message: '', other: '' };
  const taskTitle = 'Order the pelican feeder';
  const hostileTitle = '<img src=x onerror=alert(1)> pelican <b>bold</b>';

  beforeAll(async () => {
    const user = await signUp(app.server.url, { fullName: 'Searcher' });
    api = sockets.track(await connectReady(app.server.url, user.auth.accessToken));
    // The task lives in the Completed view, so that going to it must change the panel's view.
    ids.task = (await api.call('task:create', { title: taskTitle, description: 'The big one, for the garden pond' })).task.id;
    await api.call('task:complete', { id: ids.task });
    await api.call('task:create', { title: hostileTitle });
    const asked = await api.call('chat:send', { content: 'Where do pelicans nest in winter?' });
    await api.waitFor('chat:done', (d) => d.message.id === asked.assistantMessageId, 15_000);
    ids.conversation = asked.conversationId;
    ids.message = asked.userMessage.id;
    const other = await api.call('chat:send', { content: 'Plan the week' });
    await api.waitFor('chat:done', (d) => d.message.id === other.assistantMessageId, 15_000);
    ids.other = other.conversationId;

    page = await app.newPage();
    await page.goto('/');
    await logInInUi(page, user);
    await page.getByTestId('conversation-item').first().waitFor();
  });

  afterAll(() => sockets.closeAll());

  /** Opens the palette with Ctrl+K and types `query`; resolves when its results are shown. */
  async function search(query: string): Promise<void> {
    await page.keyboard.press('Control+K');
    await expect.poll(() => paletteOpen(page)).toBe(true);
    expect(await activeTestId(page)).toBe('search-input');
    await page.keyboard.type(query, { delay: 20 });
    await expect.poll(() => page.getByTestId('search-status').textContent()).toMatch(/results?\./);
  }

  it('[CHAT-11] Ctrl+K, a word, the arrow keys and Enter: the completed task is shown in its view, selected and marked', async () => {
    await expect.poll(() => page.getByTestId('view-active').getAttribute('aria-selected')).toBe('true');
    await search('pelican');
    const results = page.getByTestId('search-result');
    const kinds = await results.evaluateAll((els) => els.map((e) => (e as unknown as { dataset: { kind: string; id: string } }).dataset));
    expect(kinds.map((k) => k.kind).sort()).toEqual(['conversation', 'message', 'message', 'task', 'task']);
    const at = kinds.findIndex((k) => k.id === ids.task);
    // The first result is active; the arrow keys move the active option (aria-activedescendant) and wrap.
    const input = page.getByTestId('search-input');
    await expect.poll(() => input.getAttribute('aria-activedescendant')).toBe('search-option-0');
    await page.keyboard.press('ArrowUp');
    expect(await input.getAttribute('aria-activedescendant')).toBe(`search-option-${kinds.length - 1}`);
    await page.keyboard.press('ArrowDown');
    for (let i = 0; i < at; i++) await page.keyboard.press('ArrowDown');
    expect(await input.getAttribute('aria-activedescendant')).toBe(`search-option-${at}`);
    expect(await results.nth(at).getAttribute('aria-selected')).toBe('true');

    // The task's hit: its title, a kind that says where it lives, the snippet's word in <mark>, no « » left.
    const hit = results.nth(at);
    expect(await hit.locator('.title').textContent()).toBe(taskTitle);
    expect(await hit.locator('.kind').textContent()).toBe('Task · done');
    expect(await hit.locator('mark').allTextContents()).toEqual(['pelican']);
    expect(await hit.getByTestId('search-snippet').textContent()).toBe('Order the pelican feeder');

    await page.keyboard.press('Enter');
    await expect.poll(() => paletteOpen(page)).toBe(false);
    const item = taskItem(page, taskTitle);
    await expect.poll(() => item.getAttribute('data-highlighted')).toBe('true');
    expect(await item.getAttribute('aria-current')).toBe('true');
    expect(await page.getByTestId('view-completed').getAttribute('aria-selected')).toBe('true');
    expect(await item.isVisible()).toBe(true);
  });

  it('[CHAT-11] a message hit opens its conversation; the server text is shown as text', async () => {
    await page.getByTestId('conversation-item').filter({ hasText: 'Plan the week' }).getByRole('button').first().click();
    const results = page.getByTestId('search-result');
    // The hostile title is text, not markup: no image, no bold, the angle brackets visible.
    await search('bold');
    expect(await results.count()).toBe(1);
    expect(await results.first().locator('.title').textContent()).toBe(hostileTitle);
    expect(await page.getByTestId('search-palette').locator('img, b').count()).toBe(0);
    expect(await results.first().locator('mark').allTextContents()).toEqual(['bold']);
    await page.keyboard.press('Escape');
    await expect.poll(() => paletteOpen(page)).toBe(false);

    await search('nest winter');
    const message = page.locator(`[data-testid="search-result"][data-id="${ids.message}"]`);
    expect(await message.getAttribute('data-kind')).toBe('message');
    expect(await message.locator('.title').textContent()).toBe('Where do pelicans nest in winter?');
    expect(await message.locator('mark').allTextContents()).toEqual(['nest', 'winter']);
    await message.click();
    await expect.poll(() => paletteOpen(page)).toBe(false);
    const current = page.locator('[data-testid="conversation-item"] button[aria-current="page"]');
    await expect.poll(() => current.textContent()).toContain('Where do pelicans nest in winter?');
    await expect.poll(() => page.getByTestId('message-list').textContent()).toContain('Where do pelicans nest in winter?');
  });

  it('[CHAT-11] Escape closes and gives focus back; a query with nothing found says so; Ctrl+K works in a text field', async () => {
    const composer = page.getByTestId('composer-input');
    await composer.focus();
    await page.keyboard.press('Control+K');
    await expect.poll(() => paletteOpen(page)).toBe(true);
    // It starts empty, whatever the last search was.
    expect(await page.getByTestId('search-input').inputValue()).toBe('');
    await page.keyboard.type('zebra');
    await expect.poll(() => page.getByTestId('search-status').textContent()).toBe('Nothing found.');
    expect(await page.getByTestId('search-result').count()).toBe(0);
    await page.keyboard.press('Escape');
    await expect.poll(() => paletteOpen(page)).toBe(false);
    expect(await activeTestId(page)).toBe('composer-input');
    expect(await composer.inputValue()).toBe('');
  });

  it('[CHAT-11] the open palette has no WCAG A/AA violation in the light or the dark theme', async () => {
    await page.evaluate(axeSource);
    const found: string[] = [];
    for (const theme of ['light', 'dark'] as const) {
      const toggle = page.getByTestId('theme-toggle');
      if ((await toggle.getAttribute('aria-pressed')) !== String(theme === 'dark')) await toggle.click();
      await expect.poll(() => toggle.getAttribute('aria-pressed')).toBe(String(theme === 'dark'));
      await search('pelican');
      await page.keyboard.press('ArrowDown');
      await screenshot(page, `search-palette-${theme}.png`);
      const scan = await page.evaluate(async () => {
        type Rule = { id: string; nodes: { target: unknown[]; failureSummary?: string }[] };
        type Result = { violations: Rule[]; passes: Rule[] };
        const g = globalThis as unknown as { axe: { run(ctx: unknown, o: unknown): Promise<Result> }; document: { querySelector(s: string): unknown } };
        const r = await g.axe.run(g.document.querySelector('[data-testid="search-palette"]'), {
          runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
        });
        return { passed: r.passes.map((p) => p.id), violations: r.violations.flatMap((v) => v.nodes.map((n) => `${v.id}: ${n.target.join(' ')} ${n.failureSummary ?? ''}`)) };
      });
      // The scan looked at the palette's colours and its combobox and listbox.
      expect(scan.passed).toEqual(expect.arrayContaining(['color-contrast', 'aria-required-children', 'aria-allowed-attr']));
      found.push(...scan.violations.map((v) => `${theme}: ${v}`));
      await page.keyboard.press('Escape');
      await expect.poll(() => paletteOpen(page)).toBe(false);
    }
    expect(found).toEqual([]);
    expect(app.watch.dialogs).toEqual([]);
    expect(app.watch.foreignRequests).toEqual([]);
    expect(app.watch.cspViolations).toEqual([]);
    expect(app.watch.consoleErrors).toEqual([]);
    expect(app.watch.pageErrors).toEqual([]);
  });
});
