/**
 * The operators' page (PROTOCOL §7) in Chromium: an admin sees the live
 * figures of the node move as another page connects, and can disconnect a
 * user; a non-admin sees neither the entry nor the page; leaving the page
 * closes its /ops socket.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page, WebSocket } from 'playwright-core';
import { strongPassword, uniqueEmail } from '../support/env.js';
import { connectionState, e2eEnv, logInInUi, screenshot, signUpInUi, useBrowserApp, waitLive, type BrowserApp } from '../support/browser.js';
import { runCli } from '../support/admin.js';
import { signUp } from '../support/users.js';

/** An account made admin by an operator with the built command line, as in a deployment (PROTOCOL §3a). */
async function grantedAdmin(app: BrowserApp, admin: { email: string; password: string; fullName?: string }): Promise<void> {
  await signUp(app.server.url, admin);
  const granted = await runCli(app.env, 'admin', 'grant', admin.email);
  expect(granted.code, granted.stderr).toBe(0);
}

describe('the ops page', () => {
  const app = useBrowserApp(() => e2eEnv());
  let adminPage: Page;
  let userPage: Page;
  /** WebSockets each page opened, in order */
  const adminSockets: WebSocket[] = [];
  const userSockets: WebSocket[] = [];
  let opsSocket: WebSocket | undefined;
  const admin = { email: uniqueEmail('e2e-admin'), password: strongPassword(), fullName: 'Grace Operator' };
  const user = { email: uniqueEmail('e2e-user'), password: strongPassword(), fullName: 'Uma User' };

  beforeAll(async () => {
    await grantedAdmin(app, admin);
    adminPage = await app.newPage();
    adminPage.on('websocket', (ws) => adminSockets.push(ws));
    userPage = await (await app.newContext()).newPage();
    userPage.on('websocket', (ws) => userSockets.push(ws));
  });

  it('shows an admin the live figures of the node: the sockets figure goes up when another page connects', async () => {
    await adminPage.goto('/');
    await logInInUi(adminPage, admin);
    const before = adminSockets.length;
    await adminPage.getByTestId('open-ops').click();
    await adminPage.getByRole('heading', { level: 1, name: 'Operators' }).waitFor();
    expect(new URL(adminPage.url()).pathname).toBe('/ops');
    await adminPage.locator('[data-testid="ops-status"][data-state="live"]').waitFor({ timeout: 10_000 });
    // The page opened a connection of its own for /ops.
    expect(adminSockets.length).toBe(before + 1);
    opsSocket = adminSockets[before];

    const node = adminPage.getByTestId('ops-node');
    await node.first().waitFor();
    expect(await node.count()).toBe(1);
    const sockets = node.getByTestId('node-sockets');
    // Let a full interval pass so the figure includes the admin's own app socket.
    await adminPage.waitForTimeout(1_500);
    const n = Number(await sockets.textContent());
    expect(n).toBeGreaterThanOrEqual(1);
    expect(await node.getByTestId('node-uptime').textContent()).toMatch(/\d+ (s|min|h)/);

    // A second page connects: another user's tab.
    await signUpInUi(userPage, user);
    await expect.poll(() => sockets.textContent(), { timeout: 5_000 }).toBe(String(n + 1));
    await expect.poll(() => adminPage.getByTestId('total-sockets').textContent()).toBe(String(n + 1));
    await expect.poll(() => node.getByTestId('node-users').textContent()).toBe('2');

    // Every chart is drawn, and tells its current values in text.
    const charts = adminPage.getByTestId('ops-chart');
    expect(await charts.count()).toBe(9);
    expect(await charts.locator('canvas').count()).toBeGreaterThanOrEqual(9);
    const socketsChart = adminPage.locator('[data-testid="ops-chart"][data-chart="sockets"]');
    expect(await socketsChart.getByRole('heading', { name: 'Sockets' }).count()).toBe(1);
    await expect.poll(() => socketsChart.getByTestId('chart-value').first().textContent()).toBe(String(n + 1));
    expect(await socketsChart.locator('.plot').getAttribute('aria-hidden')).toBe('true');
  });

  it('gives a non-admin no Operators entry, and "Operators only" at /ops', async () => {
    await waitLive(userPage);
    expect(await userPage.getByTestId('open-ops').count()).toBe(0);
    await userPage.goto('/ops');
    await userPage.getByRole('heading', { level: 1, name: 'Operators only' }).waitFor({ timeout: 10_000 });
    expect(await userPage.getByTestId('ops-status').count()).toBe(0);
    expect(await userPage.getByTestId('ops-nodes').count()).toBe(0);
    await userPage.getByRole('button', { name: 'Back to Sam' }).first().click();
    await waitLive(userPage);
    expect(new URL(userPage.url()).pathname).toBe('/');
    expect(await userPage.getByTestId('open-ops').count()).toBe(0);
  });

  it('saves screenshots of the ops page, light, dark and phone-sized', async () => {
    await adminPage.waitForTimeout(2_000); // a few points on the charts
    await screenshot(adminPage, 'ops-light.png');
    await adminPage.emulateMedia({ colorScheme: 'dark' });
    await adminPage.waitForTimeout(300);
    await screenshot(adminPage, 'ops-dark.png');
    await adminPage.setViewportSize({ width: 375, height: 780 });
    await adminPage.waitForTimeout(300);
    await screenshot(adminPage, 'ops-phone-dark.png');
    // Nothing but the tables' own scrolling areas is wider than the phone.
    const overflow = await adminPage.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    expect(overflow).toBeLessThanOrEqual(0);
    await adminPage.setViewportSize({ width: 1280, height: 800 });
    await adminPage.emulateMedia({ colorScheme: 'light' });
  });

  it('lists the users online and disconnects one after a confirmation: their page loses its connection', async () => {
    await adminPage.getByTestId('ops-refresh-users').click();
    const row = adminPage.locator(`[data-testid="ops-user"][data-email="${user.email}"]`);
    await row.waitFor();
    // The admin's own row has no actions.
    const own = adminPage.locator(`[data-testid="ops-user"][data-email="${admin.email}"]`);
    expect(await own.textContent()).toContain('you');
    expect(await own.getByTestId('ops-disconnect').count()).toBe(0);

    const userSocket = userSockets.at(-1)!;
    expect(userSocket.isClosed()).toBe(false);
    await connectionState(userPage, 'live').waitFor();
    // Leaving "live" in any way: reconnecting, offline, or signed out.
    const lostConnection = userPage
      .locator('[data-testid="connection-status"]:not([data-state="live"])')
      .or(userPage.getByTestId('auth-screen'));

    await row.getByTestId('ops-disconnect').click();
    await row.getByTestId('ops-disconnect-confirm').click();
    await expect.poll(() => adminPage.getByTestId('toasts').textContent()).toMatch(/Disconnected 1 socket of e2e-user/);
    await expect.poll(() => userSocket.isClosed(), { timeout: 5_000 }).toBe(true);
    await lostConnection.first().waitFor({ timeout: 5_000 });
  });

  it('closes the /ops socket when the admin leaves the page', async () => {
    expect(opsSocket).toBeDefined();
    expect(opsSocket!.isClosed()).toBe(false);
    await adminPage.getByRole('button', { name: 'Back to Sam' }).click();
    await waitLive(adminPage);
    expect(new URL(adminPage.url()).pathname).toBe('/');
    await expect.poll(() => opsSocket!.isClosed(), { timeout: 5_000 }).toBe(true);
    // The app's own connection stays.
    await adminPage.waitForTimeout(500);
    await connectionState(adminPage, 'live').waitFor({ timeout: 1_000 });
    // And the browser's Back button returns to it.
    await adminPage.goBack();
    await adminPage.locator('[data-testid="ops-status"][data-state="live"]').waitFor({ timeout: 10_000 });
  });

  it('saw no dialog, no foreign request, no CSP violation and no console error in either browser', () => {
    for (const watch of app.watches) {
      expect(watch.dialogs).toEqual([]);
      expect(watch.foreignRequests).toEqual([]);
      expect(watch.cspViolations).toEqual([]);
      expect(watch.pageErrors).toEqual([]);
      expect(watch.consoleErrors).toEqual([]);
    }
  });
});

describe('the ops page with short access tokens', () => {
  const app = useBrowserApp(() => e2eEnv({ ACCESS_TOKEN_EXPIRE_MINUTES: '0.05' }));
  let page: Page;

  beforeAll(async () => {
    const admin = { email: uniqueEmail('e2e-admin-short'), password: strongPassword() };
    await grantedAdmin(app, admin);
    page = await app.newPage();
    await page.goto('/');
    await logInInUi(page, admin);
  });

  it('comes back with the current token each time the server closes the view at token expiry', async () => {
    const opened: WebSocket[] = [];
    page.on('websocket', (ws) => opened.push(ws));
    await page.getByTestId('open-ops').click();
    const live = page.locator('[data-testid="ops-status"][data-state="live"]');
    await live.waitFor({ timeout: 10_000 });
    const updated = page.getByText(/^Updated /);
    // Three token lifetimes (3 s each): the server closes the view at each expiry.
    await page.waitForTimeout(10_000);
    expect(opened.length).toBeGreaterThanOrEqual(3);
    await live.waitFor({ timeout: 5_000 });
    // Still receiving: the time of the last figures moves on.
    const before = await updated.textContent();
    await expect.poll(() => updated.textContent(), { timeout: 5_000 }).not.toBe(before);
    expect(await page.getByTestId('ops-forbidden').count()).toBe(0);
    expect(app.watch.cspViolations).toEqual([]);
    expect(app.watch.pageErrors).toEqual([]);
    expect(app.watch.consoleErrors).toEqual([]);
  });
});
