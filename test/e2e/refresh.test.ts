/**
 * Silent refresh with short access tokens (3 s), in Chromium: one tab
 * refreshes at a time and shares the token with the other, both sockets send
 * `auth:refresh` and are never cut off at expiry.
 */
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { strongPassword, uniqueEmail } from '../support/env.js';
import { e2eEnv, signUpInUi, taskItem, useBrowserApp, waitLive } from '../support/browser.js';

describe('silent refresh across tabs', () => {
  const app = useBrowserApp(() => e2eEnv({ ACCESS_TOKEN_EXPIRE_MINUTES: '0.05' }));
  let tab1: Page;
  let tab2: Page;

  it('keeps both tabs live past several token lifetimes with one refresh at a time', async () => {
    const sockets = new Map<Page, number>();
    const countSockets = (page: Page) => page.on('websocket', () => sockets.set(page, (sockets.get(page) ?? 0) + 1));
    tab1 = await app.newPage();
    countSockets(tab1);
    await signUpInUi(tab1, { email: uniqueEmail('e2e-refresh'), password: strongPassword() });
    tab2 = await app.newPage();
    countSockets(tab2);
    await tab2.goto('/');
    await waitLive(tab2);

    const refreshes: number[] = [];
    app.context.on('response', (res) => {
      if (res.url().endsWith('/api/v1/auth/refresh') && res.status() === 200) refreshes.push(Date.now());
    });
    await expect.poll(() => refreshes.length, { timeout: 15_000, interval: 200 }).toBeGreaterThanOrEqual(3);

    // Each token was refreshed by one tab only: no two refreshes back to back.
    for (let i = 1; i < refreshes.length; i++) expect(refreshes[i]! - refreshes[i - 1]!).toBeGreaterThan(1_000);
    // No socket was cut off at expiry and reopened.
    expect(sockets.get(tab1)).toBe(1);
    expect(sockets.get(tab2)).toBe(1);
    await Promise.all([waitLive(tab1, 1_000), waitLive(tab2, 1_000)]);
    await tab1.getByTestId('quick-add').fill('still live');
    await tab1.getByTestId('quick-add').press('Enter');
    await taskItem(tab2, 'still live').waitFor({ timeout: 5_000 });
    expect(app.watch.consoleErrors).toEqual([]);
    expect(app.watch.cspViolations).toEqual([]);
  });
});
