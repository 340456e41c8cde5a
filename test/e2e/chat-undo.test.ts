/**
 * Undo what the assistant did, in Chromium (CHAT-15), against the built client
 * and a real server with the embedded offline model: the Undo of a tool call
 * shows in every tab, works from any of them, and is gone 30 s after the tool
 * ran (a real wait: the client has no test clock).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { strongPassword, uniqueEmail } from '../support/env.js';
import { e2eEnv, sendChat, signUpInUi, taskItem, useBrowserApp, waitLive } from '../support/browser.js';

const axeSource = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

describe('undo what the assistant did, in a browser', () => {
  const app = useBrowserApp(() => e2eEnv());
  let tab1: Page;
  let tab2: Page;
  let tab3: Page | undefined;
  const user = { email: uniqueEmail('e2e-undo'), password: strongPassword(), fullName: 'Una Doe' };

  const undoButton = (page: Page, title: string) => page.getByRole('button', { name: `Undo: Created a task: ${title}`, exact: true });
  const openConversation = async (page: Page) => {
    await page.getByTestId('conversation-item').first().locator('button.open').click();
  };

  /** The WCAG AA rules of the Undo and its notes (contrast, names), in the light and the dark theme. */
  async function expectAccessibleLog(page: Page): Promise<void> {
    if (!(await page.evaluate('typeof window.axe === "object"'))) await page.evaluate(axeSource);
    const toggle = page.getByTestId('theme-toggle').first();
    const found: string[] = [];
    for (const dark of [false, true]) {
      if ((await toggle.getAttribute('aria-pressed')) !== String(dark)) await toggle.click();
      await expect.poll(() => toggle.getAttribute('aria-pressed')).toBe(String(dark));
      // Let the theme's transitions end before measuring colours.
      await page.waitForTimeout(400);
      const result = await page.evaluate(async () => {
        type Axe = { run(context: unknown, options: unknown): Promise<{ violations: { id: string; nodes: { target: unknown[] }[] }[]; passes: unknown[] }> };
        const axe = (globalThis as unknown as { axe: Axe }).axe;
        const r = await axe.run(
          { include: [['[data-testid="message-list"]']] },
          { runOnly: { type: 'rule', values: ['color-contrast', 'button-name', 'label-content-name-mismatch'] }, rules: { 'label-content-name-mismatch': { enabled: true } } },
        );
        return { violations: r.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), passes: r.passes.length };
      });
      expect(result.passes).toBeGreaterThan(0);
      found.push(...result.violations.map((v) => `${dark ? 'dark' : 'light'} ${v}`));
    }
    expect(found).toEqual([]);
  }

  beforeAll(async () => {
    tab1 = await app.newPage();
  });

  it('[CHAT-15] the Undo of a created task shows in both tabs; Undo in tab 2 removes the task in tab 1 and the Undo goes in both', async () => {
    await signUpInUi(tab1, user);
    tab2 = await app.newPage();
    await tab2.goto('/');
    await waitLive(tab2);

    await sendChat(tab1, 'add task: Buy oat milk');
    await taskItem(tab1, 'Buy oat milk').waitFor({ timeout: 15_000 });
    await taskItem(tab2, 'Buy oat milk').waitFor({ timeout: 15_000 });
    await openConversation(tab2);
    for (const page of [tab1, tab2]) await undoButton(page, 'Buy oat milk').waitFor({ timeout: 10_000 });
    await expectAccessibleLog(tab1);

    await undoButton(tab2, 'Buy oat milk').click();
    await tab2.getByTestId('toasts').getByText('Undone.').waitFor({ timeout: 10_000 });
    await taskItem(tab1, 'Buy oat milk').waitFor({ state: 'detached', timeout: 10_000 });
    for (const page of [tab1, tab2]) {
      await page.getByTestId('undo-done').waitFor({ timeout: 10_000 });
      expect(await undoButton(page, 'Buy oat milk').count()).toBe(0);
      expect(await taskItem(page, 'Buy oat milk').count()).toBe(0);
    }
    // Not in the trash either: it is as if it had never been added.
    await tab1.getByTestId('view-deleted').click();
    await tab1.getByTestId('tasks-empty').waitFor();
    await tab1.getByTestId('view-active').click();
  });

  it('[CHAT-15] a task changed in another tab since shows "Changed since" instead of the Undo, and stays as changed', async () => {
    await sendChat(tab1, 'add task: Call the plumber');
    await taskItem(tab2, 'Call the plumber').waitFor({ timeout: 15_000 });
    await undoButton(tab1, 'Call the plumber').waitFor({ timeout: 10_000 });
    await undoButton(tab2, 'Call the plumber').waitFor({ timeout: 10_000 });

    await tab2.getByRole('button', { name: 'Complete Call the plumber' }).click();
    for (const page of [tab1, tab2]) {
      const call = page.getByTestId('tool-call').filter({ hasText: 'Call the plumber' });
      await call.getByTestId('undo-changed').waitFor({ timeout: 10_000 });
      expect(await call.getByTestId('undo-changed').textContent()).toBe("Changed since — can't undo");
      expect(await undoButton(page, 'Call the plumber').count()).toBe(0);
    }
    await expectAccessibleLog(tab2);
    await tab1.getByTestId('view-completed').click();
    await taskItem(tab1, 'Call the plumber').waitFor();
    await tab1.getByTestId('view-active').click();
  });

  it('[CHAT-15] the Undo shows in a tab opened within the 30 s, and is gone from every tab after them', { timeout: 90_000 }, async () => {
    await sendChat(tab1, 'add task: Renew the passport');
    await undoButton(tab1, 'Renew the passport').waitFor({ timeout: 15_000 });
    const shownAt = Date.now();
    await undoButton(tab2, 'Renew the passport').waitFor({ timeout: 10_000 });

    tab3 = await app.newPage();
    await tab3.goto('/');
    await waitLive(tab3);
    await openConversation(tab3);
    await undoButton(tab3, 'Renew the passport').waitFor({ timeout: 10_000 });
    expect(Date.now() - shownAt).toBeLessThan(30_000);

    // The window is 30 s from the tool's change, which came before the button showed.
    await tab1.waitForTimeout(Math.max(0, shownAt + 31_000 - Date.now()));
    for (const page of [tab1, tab2, tab3]) {
      await undoButton(page, 'Renew the passport').waitFor({ state: 'detached', timeout: 2_000 });
      expect(await page.getByTestId('tool-call').filter({ hasText: 'Renew the passport' }).count()).toBe(1);
    }
    await taskItem(tab1, 'Renew the passport').waitFor();
    expect(app.watch.consoleErrors).toEqual([]);
    expect(app.watch.pageErrors).toEqual([]);
  });
});
