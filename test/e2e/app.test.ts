/**
 * The app in Chromium against the built client and a real server with the
 * offline model: sign-up, streaming chat, two live tabs, hostile content,
 * and the CSP.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { strongPassword, uniqueEmail } from '../support/env.js';
import {
  connectionState,
  e2eEnv,
  logInInUi,
  sendChat,
  signUpInUi,
  taskItem,
  useBrowserApp,
} from '../support/browser.js';

describe('the app in a browser', () => {
  const app = useBrowserApp(() => e2eEnv());
  let tab1: Page;
  let tab2: Page;
  const user = { email: uniqueEmail('e2e'), password: strongPassword(), fullName: 'Ada Tester' };

  beforeAll(async () => {
    tab1 = await app.newPage();
  });

  it('shows the password rules as the user types, signs up, logs out and logs in again', async () => {
    await tab1.goto('/');
    await tab1.getByRole('tab', { name: 'Sign up' }).click();
    const password = tab1.getByLabel('Password', { exact: true });
    await password.fill('short');
    const rules = tab1.getByTestId('password-rules');
    await expect.poll(() => rules.locator('li[data-met="false"]').count()).toBe(4); // length, upper, digit, special
    await expect(await rules.locator('li[data-rule="lower"]').getAttribute('data-met')).toBe('true');
    await expect(tab1.getByRole('button', { name: 'Create account' }).isDisabled()).resolves.toBe(true);
    await password.fill(user.password);
    await expect.poll(() => rules.locator('li[data-met="false"]').count()).toBe(0);

    await signUpInUi(tab1, user);
    await tab1.getByTestId('open-account').click();
    await tab1.getByTestId('logout').click();
    await tab1.getByTestId('auth-screen').waitFor();
    await logInInUi(tab1, user);
    expect(await tab1.getByTestId('open-account').textContent()).toContain(user.fullName);
  });

  it('streams a chat answer into the page', async () => {
    await sendChat(tab1, 'Hello Sam, how are you?');
    const answer = tab1.locator('[data-testid="message"][data-role="assistant"]').first();
    // It is seen while it streams, then complete.
    await answer.and(tab1.locator('[data-status="streaming"]')).waitFor({ timeout: 10_000 });
    await answer.and(tab1.locator('[data-status="complete"]')).waitFor({ timeout: 15_000 });
    expect(await answer.textContent()).toContain('offline model');
    await tab1.getByTestId('conversation-item').first().waitFor();
  });

  it('keeps two tabs live: a task added by the assistant, a completion, a streamed answer', async () => {
    tab2 = await app.newPage();
    await tab2.goto('/');
    await connectionState(tab2, 'live').waitFor({ timeout: 15_000 });
    // Tab 2 follows the same conversation.
    await tab2.getByTestId('conversation-item').first().locator('button.open').click();
    await tab2.locator('[data-testid="message"][data-role="assistant"][data-status="complete"]').first().waitFor();

    await sendChat(tab1, 'add task: buy milk');
    const inTab2 = taskItem(tab2, 'buy milk');
    await inTab2.waitFor({ timeout: 10_000 });
    await taskItem(tab1, 'buy milk').waitFor();
    // Made by the assistant: marked for a moment in every tab.
    await inTab2.and(tab2.locator('[data-highlighted="true"]')).waitFor({ timeout: 2_000 });
    await inTab2.and(tab2.locator('[data-highlighted="false"]')).waitFor({ timeout: 5_000 });
    // The tool call shows inline in both tabs.
    await tab2.locator('[data-testid="tool-call"][data-tool="create_task"]').waitFor();

    await inTab2.getByTestId('complete-task').click();
    await taskItem(tab1, 'buy milk').waitFor({ state: 'detached' });
    await expect.poll(() => tab1.getByTestId('count-completed').textContent()).toBe('1');

    // An answer streaming in tab 1 is seen streaming in tab 2.
    const before = await tab2.locator('[data-testid="message"][data-role="assistant"]').count();
    await sendChat(tab1, 'Tell me about the weather on Mars please');
    const streamingIn2 = tab2.locator('[data-testid="message"][data-role="assistant"]').nth(before);
    await streamingIn2.and(tab2.locator('[data-status="streaming"]')).waitFor({ timeout: 10_000 });
    await streamingIn2.and(tab2.locator('[data-status="complete"]')).waitFor({ timeout: 15_000 });
    const final1 = await tab1.locator('[data-testid="message"][data-role="assistant"]').last().locator('.markdown').textContent();
    expect(await streamingIn2.locator('.markdown').textContent()).toBe(final1);
  });

  it('renders a hostile task title and hostile markdown as inert text', async () => {
    const hostile = '<img src=x onerror=alert(1)>';
    await tab1.getByTestId('quick-add').fill(hostile);
    await tab1.getByTestId('quick-add').press('Enter');
    await taskItem(tab2, hostile).waitFor();
    expect(await taskItem(tab1, hostile).getByTestId('task-title').textContent()).toBe(hostile);

    const answers = tab1.locator('[data-testid="message"][data-role="assistant"]');
    const before = await answers.count();
    await sendChat(tab1, '<script>alert(1)</script> ![x](https://evil.example/x.png)');
    const echo = answers.nth(before);
    await echo.and(tab1.locator('[data-status="complete"]')).waitFor({ timeout: 15_000 });
    expect(await echo.textContent()).toContain('<script>alert(1)</script>');
    for (const page of [tab1, tab2]) {
      const list = page.getByTestId('message-list');
      expect(await list.locator('img').count()).toBe(0);
      expect(await list.locator('script').count()).toBe(0);
      expect(await page.getByTestId('task-list').locator('img').count()).toBe(0);
    }
    const user = tab1.locator('[data-testid="message"][data-role="user"]').last();
    expect(await user.textContent()).toContain('![x](https://evil.example/x.png)');
    // Links the assistant writes open safely.
    for (const rel of await tab1.locator('.markdown a').evaluateAll((as) => as.map((a) => a.getAttribute('rel')))) {
      expect(rel).toBe('noopener noreferrer');
    }
  });

  it('shows a conflict banner when a task was edited elsewhere, and can apply the edit anyway', async () => {
    await tab1.getByTestId('quick-add').fill('write report');
    await tab1.getByTestId('quick-add').press('Enter');
    await taskItem(tab2, 'write report').waitFor();
    // Tab 1 opens the editor on version 1; tab 2 saves version 2 meanwhile.
    await taskItem(tab1, 'write report').getByTestId('edit-task').click();
    await taskItem(tab2, 'write report').getByTestId('edit-task').click();
    await tab2.getByTestId('task-form-title').fill('write the report');
    await tab2.getByRole('button', { name: 'Save', exact: true }).click();
    await taskItem(tab2, 'write the report').waitFor();
    await tab1.getByTestId('task-form-title').fill('write the annual report');
    await tab1.getByRole('button', { name: 'Save', exact: true }).click();
    const banner = tab1.getByTestId('conflict-banner');
    await banner.waitFor();
    expect(await banner.textContent()).toContain('write the report');
    await banner.getByRole('button', { name: 'Apply mine anyway' }).click();
    await banner.waitFor({ state: 'detached' });
    await taskItem(tab2, 'write the annual report').waitFor();
    await taskItem(tab1, 'write the annual report').waitFor();
  });

  it('shows the account: profile, sessions, and an export downloaded as JSON', async () => {
    await tab1.getByTestId('open-account').click();
    await tab1.getByTestId('account-screen').waitFor();
    await tab1.getByLabel('Full name').fill('Ada Lovelace');
    await tab1.getByRole('button', { name: 'Save profile' }).click();
    // user:changed reaches the other tab too.
    await expect.poll(() => tab2.getByTestId('open-account').textContent()).toContain('Ada Lovelace');
    await expect.poll(() => tab1.getByTestId('session-list').locator('li').count()).toBeGreaterThanOrEqual(1);
    const [download] = await Promise.all([tab1.waitForEvent('download'), tab1.getByTestId('export-data').click()]);
    expect(download.suggestedFilename()).toMatch(/^sam-export-.*\.json$/);
    const file = await download.path();
    const data = JSON.parse(await import('node:fs/promises').then((fs) => fs.readFile(file, 'utf8')));
    expect(data.user.email).toBe(user.email);
    expect(data.tasks.map((t: { title: string }) => t.title)).toContain('buy milk');
    await tab1.getByRole('button', { name: 'Back to Sam' }).click();
    await tab1.getByTestId('main-screen').waitFor();
  });

  it("shows the server's refusals plainly: email taken, breached password, wrong password", async () => {
    // A context of its own: the refused requests are logged by the browser as failed loads.
    const other = await app.newContext();
    try {
      const page = await other.newPage();
      await page.goto('/');
      await page.getByRole('tab', { name: 'Sign up' }).click();
      await page.getByLabel('Email').fill(user.email.toUpperCase());
      await page.getByLabel('Password', { exact: true }).fill(strongPassword());
      await page.getByRole('button', { name: 'Create account' }).click();
      await expect.poll(() => page.getByTestId('auth-error').textContent()).toContain('already exists');

      await page.getByLabel('Email').fill(uniqueEmail('e2e-breach'));
      await page.getByLabel('Password', { exact: true }).fill('Nick1234-rem936');
      await page.getByRole('button', { name: 'Create account' }).click();
      await expect.poll(() => page.getByTestId('auth-error').textContent()).toContain('breach');

      await page.getByRole('tab', { name: 'Log in' }).click();
      await page.getByLabel('Email').fill(user.email);
      await page.getByLabel('Password', { exact: true }).fill('Wrong-password-123!');
      await page.getByRole('button', { name: 'Log in', exact: true }).click();
      await expect.poll(() => page.getByTestId('auth-error').textContent()).toContain('not right');
      expect(other.watch.dialogs).toEqual([]);
      expect(other.watch.cspViolations).toEqual([]);
    } finally {
      await other.context.close();
    }
  });

  it('ran the whole flow with no dialog, no foreign request, no CSP violation and no console error', () => {
    expect(app.watch.dialogs).toEqual([]);
    expect(app.watch.foreignRequests).toEqual([]);
    expect(app.watch.cspViolations).toEqual([]);
    expect(app.watch.pageErrors).toEqual([]);
    expect(app.watch.consoleErrors).toEqual([]);
  });
});
