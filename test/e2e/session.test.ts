/**
 * Sessions across tabs and server restarts, in Chromium: a restart makes the
 * tabs reconnect and converge with `task:sync`; a logout in one tab signs out
 * the others.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { strongPassword, uniqueEmail } from '../support/env.js';
import { logIn } from '../support/users.js';
import { connectReady } from '../support/sockets.js';
import { connectionState, e2eEnv, freePort, signUpInUi, taskItem, useBrowserApp, waitLive } from '../support/browser.js';

describe('sessions across tabs and restarts', () => {
  // A fixed port and SECRET_KEY, so that the restarted server is the same origin and accepts the tabs' tokens.
  const app = useBrowserApp(async () => e2eEnv({ PORT: String(await freePort()) }));
  let tab1: Page;
  let tab2: Page;
  const user = { email: uniqueEmail('e2e-session'), password: strongPassword() };

  beforeAll(async () => {
    tab1 = await app.newPage();
    await signUpInUi(tab1, user);
    tab2 = await app.newPage();
    await tab2.goto('/');
    await waitLive(tab2);
  });

  it('shows reconnecting and offline while the server restarts, then converges with what changed meanwhile', async () => {
    // The browser logs the refused WebSocket attempts of the restart; nothing else may be an error.
    app.watch.allow.push(/WebSocket connection to .* failed/, /ERR_CONNECTION_REFUSED|ERR_INTERNET_DISCONNECTED/);
    await tab1.getByTestId('quick-add').fill('before the restart');
    await tab1.getByTestId('quick-add').press('Enter');
    await taskItem(tab2, 'before the restart').waitFor();

    await app.server.stop();
    await Promise.all([connectionState(tab1, 'reconnecting').waitFor(), connectionState(tab2, 'reconnecting').waitFor()]);
    await app.context.setOffline(true);
    await Promise.all([connectionState(tab1, 'offline').waitFor(), connectionState(tab2, 'offline').waitFor()]);

    await app.startServer();
    // Another client changes the tasks while the tabs cannot hear it.
    const other = await connectReady(app.server.url, (await logIn(app.server.url, user.email, user.password)).auth.accessToken);
    try {
      await other.call('task:create', { title: 'made while you were away' });
      await app.context.setOffline(false);
      await Promise.all([waitLive(tab1), waitLive(tab2)]);
      await Promise.all([taskItem(tab1, 'made while you were away').waitFor(), taskItem(tab2, 'made while you were away').waitFor()]);
      // And the tabs are live again: a change now arrives as a push.
      await other.call('task:create', { title: 'made after the restart' });
      await Promise.all([taskItem(tab1, 'made after the restart').waitFor(), taskItem(tab2, 'made after the restart').waitFor()]);
      expect(await taskItem(tab1, 'before the restart').count()).toBe(1);
      expect(await tab2.getByTestId('count-active').textContent()).toBe('3');
    } finally {
      other.close();
    }
  });

  it('logging out in one tab sends the other to the login screen', async () => {
    await tab1.getByTestId('open-account').click();
    await tab1.getByTestId('logout').click();
    await tab1.getByTestId('auth-screen').waitFor();
    await tab2.getByTestId('auth-screen').waitFor({ timeout: 5_000 });
    expect(await tab2.getByTestId('signed-out-reason').textContent()).toMatch(/logged out|signed out/);
    // A reload stays signed out: the refresh cookie is gone.
    await tab2.reload();
    await tab2.getByTestId('auth-screen').waitFor();
  });

  it('saw no dialog, no foreign request, no CSP violation and no unexpected console error', () => {
    expect(app.watch.dialogs).toEqual([]);
    expect(app.watch.foreignRequests).toEqual([]);
    expect(app.watch.cspViolations).toEqual([]);
    expect(app.watch.pageErrors).toEqual([]);
    expect(app.watch.consoleErrors).toEqual([]);
  });
});
