/**
 * A tab left open across a restore, in Chromium: the database goes back to a
 * backup (the real `backup`/`restore` command line) while the tab still shows
 * what came after it. When the node is back, the tab's sequence number is
 * ahead of the server's; the tab must take the server's snapshot (SYNC-2's
 * reset) rather than keep tasks that no longer exist.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { runCli } from '../support/admin.js';
import { strongPassword, uniqueEmail } from '../support/env.js';
import { e2eEnv, freePort, signUpInUi, taskItem, useBrowserApp, waitLive } from '../support/browser.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sam-e2e-restore-'));
const backupFile = path.join(dir, 'sam.dump');

describe('a tab open across a restore', () => {
  // the same port across the restart, as a deployment's node keeps its address
  const app = useBrowserApp(async () => e2eEnv({ PORT: String(await freePort()) }));
  let tab: Page;
  let fresh: Page;

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const add = async (page: Page, title: string) => {
    await page.getByTestId('quick-add').fill(title);
    await page.getByTestId('quick-add').press('Enter');
    await taskItem(page, title).waitFor({ timeout: 5_000 });
  };
  const titles = async (page: Page) => (await page.getByTestId('task-title').allTextContents()).sort();

  it('shows the restored tasks, not the ones made after the backup', async () => {
    tab = await app.newPage();
    await signUpInUi(tab, { email: uniqueEmail('e2e-restore'), password: strongPassword() });
    await add(tab, 'water the plants');
    await add(tab, 'book the dentist');

    const backup = await runCli(app.env, 'backup', '--out', backupFile);
    expect(backup.code, backup.stderr).toBe(0);

    await add(tab, 'made after the backup');
    await add(tab, 'also after the backup');
    await taskItem(tab, 'book the dentist').getByTestId('delete-task').click();
    await taskItem(tab, 'book the dentist').waitFor({ state: 'detached', timeout: 5_000 });
    expect(await titles(tab)).toEqual(['also after the backup', 'made after the backup', 'water the plants']);

    expect(await app.server.stop()).toBe(0);
    const restore = await runCli(app.env, 'restore', backupFile, '--force');
    expect(restore.code, restore.stderr).toBe(0);
    await app.startServer();

    // The tab reconnects by itself and converges on what the database now holds.
    await waitLive(tab, 30_000);
    await expect.poll(() => titles(tab), { timeout: 15_000, interval: 200 }).toEqual(['book the dentist', 'water the plants']);

    // It keeps working from there: a new task shows in it and in a tab opened now, at the server's next seq.
    await add(tab, 'after the restore');
    fresh = await app.newPage();
    await fresh.goto('/');
    await waitLive(fresh);
    await expect.poll(() => titles(fresh), { timeout: 10_000, interval: 200 }).toEqual(['after the restore', 'book the dentist', 'water the plants']);
    expect(await titles(tab)).toEqual(['after the restore', 'book the dentist', 'water the plants']);
    expect(app.watch.cspViolations).toEqual([]);
  });
});
