/**
 * Edit, regenerate, continue and a refusal in Chromium (CHAT-10, CHAT-13),
 * against the built client and a real server with the embedded offline model:
 * what one tab does, the other tab shows.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { strongPassword, uniqueEmail } from '../support/env.js';
import { e2eEnv, sendChat, signUpInUi, useBrowserApp, waitLive } from '../support/browser.js';
import { REFUSAL_TEST_PROMPT } from '../../dev/offline-model/replies.js';

describe('edit and regenerate in a browser', () => {
  const app = useBrowserApp(() => e2eEnv());
  let tab1: Page;
  let tab2: Page;
  const user = { email: uniqueEmail('e2e-edit'), password: strongPassword(), fullName: 'Edith Tester' };

  const messages = (page: Page, role: 'user' | 'assistant') => page.locator(`[data-testid="message"][data-role="${role}"]`);
  const complete = (page: Page) => page.locator('[data-testid="message"][data-role="assistant"][data-status="complete"]');

  beforeAll(async () => {
    tab1 = await app.newPage();
  });

  it('[CHAT-10] an edit in tab 1 replaces the old answer with the new one in tab 2', async () => {
    await signUpInUi(tab1, user);
    await sendChat(tab1, 'The very first question');
    await complete(tab1).first().waitFor({ timeout: 15_000 });

    tab2 = await app.newPage();
    await tab2.goto('/');
    await waitLive(tab2);
    await tab2.getByTestId('conversation-item').first().locator('button.open').click();
    await complete(tab2).first().waitFor({ timeout: 10_000 });
    expect(await messages(tab2, 'assistant').first().textContent()).toContain('The very first question');

    const question = messages(tab1, 'user').first();
    await question.getByRole('button', { name: 'Edit your message' }).click();
    const editor = question.getByLabel('Edit your message');
    expect(await editor.inputValue()).toBe('The very first question');
    await editor.fill('A better question instead');
    await question.getByRole('button', { name: 'Save' }).click();

    // Tab 2: the old answer goes, the new one streams in its place.
    await expect.poll(() => messages(tab2, 'assistant').first().textContent(), { timeout: 15_000 }).toContain('A better question instead');
    await complete(tab2).first().waitFor({ timeout: 15_000 });
    for (const page of [tab1, tab2]) {
      expect(await messages(page, 'user').allTextContents()).toEqual([expect.stringContaining('A better question instead')]);
      expect(await messages(page, 'assistant').count()).toBe(1);
      expect(await page.getByTestId('message-list').textContent()).not.toContain('The very first question');
    }

    // Regenerate from tab 2: still one answer in each tab.
    await tab2.getByRole('button', { name: 'Regenerate this answer' }).click();
    await messages(tab1, 'assistant').and(tab1.locator('[data-status="streaming"]')).waitFor({ timeout: 10_000 });
    await complete(tab1).first().waitFor({ timeout: 15_000 });
    for (const page of [tab1, tab2]) {
      await expect.poll(() => messages(page, 'assistant').count()).toBe(1);
      await complete(page).first().waitFor({ timeout: 10_000 });
    }
  });

  it('[CHAT-13] an answer cut at its length limit offers Continue, and goes on in both tabs; a refusal says so', async () => {
    await sendChat(tab1, 'write a long story');
    const story = messages(tab2, 'assistant').last();
    await tab2.getByTestId('length-note').waitFor({ timeout: 30_000 });
    const cut = (await story.locator('.markdown').textContent()) ?? '';
    await tab2.getByRole('button', { name: 'Continue this answer' }).click();
    await tab1.getByTestId('length-note').waitFor({ state: 'detached', timeout: 30_000 });
    await messages(tab1, 'assistant').last().and(tab1.locator('[data-status="complete"]')).waitFor({ timeout: 30_000 });
    const whole = (await messages(tab1, 'assistant').last().locator('.markdown').textContent()) ?? '';
    expect(whole.length).toBeGreaterThan(cut.length);
    expect(whole).toContain('Chapter 60. The lighthouse keeper');
    await expect.poll(() => messages(tab2, 'assistant').last().locator('.markdown').textContent(), { timeout: 10_000 }).toBe(whole);
    expect(await tab2.getByRole('button', { name: 'Continue this answer' }).count()).toBe(0);

    await sendChat(tab2, REFUSAL_TEST_PROMPT);
    for (const page of [tab1, tab2]) {
      await page.getByTestId('refusal-note').waitFor({ timeout: 15_000 });
      expect(await page.getByTestId('refusal-note').textContent()).toContain('Claude declined to answer this');
    }
    // The next turn works.
    await sendChat(tab1, 'Something else then');
    await expect.poll(() => messages(tab2, 'assistant').last().textContent(), { timeout: 15_000 }).toContain('Something else then');
  });
});
