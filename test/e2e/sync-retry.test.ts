/**
 * A `task:sync` the server could not answer (`UNAVAILABLE`: its database
 * restarting) while the socket stays up, in Chromium. No push may come to show
 * the tab what it missed, so it must ask again by itself. The refusals are
 * made in the browser's WebSocket route, the server itself untouched.
 */
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { strongPassword, uniqueEmail } from '../support/env.js';
import { e2eEnv, signUpInUi, taskItem, useBrowserApp, waitLive } from '../support/browser.js';

describe('a task:sync answered UNAVAILABLE', () => {
  const app = useBrowserApp(() => e2eEnv());
  let writer: Page;
  let reader: Page;

  it('is asked again until it is answered, and the tab shows the tasks', async () => {
    writer = await app.newPage();
    await signUpInUi(writer, { email: uniqueEmail('e2e-sync-retry'), password: strongPassword() });
    await writer.getByTestId('quick-add').fill('made before the tab opened');
    await writer.getByTestId('quick-add').press('Enter');
    await taskItem(writer, 'made before the tab opened').waitFor({ timeout: 5_000 });

    // The next tab's first two task:sync requests get the answer of a server whose database is away.
    reader = await app.newPage();
    const refusedAt: number[] = [];
    await reader.routeWebSocket(/\/socket\.io\//, (ws) => {
      const upstream = ws.connectToServer();
      ws.onMessage((message) => {
        const sync = typeof message === 'string' ? /^42(\d+)\["task:sync"/.exec(message) : null;
        if (sync && refusedAt.length < 2) {
          refusedAt.push(Date.now());
          ws.send(`43${sync[1]}[${JSON.stringify({ ok: false, error: { code: 'UNAVAILABLE', message: 'The service is unavailable' } })}]`);
          return;
        }
        upstream.send(message);
      });
      upstream.onMessage((message) => ws.send(message));
    });
    await reader.goto('/');
    await waitLive(reader);
    await taskItem(reader, 'made before the tab opened').waitFor({ timeout: 15_000 });
    expect(refusedAt).toHaveLength(2);
    // Asked again after a pause that grows, not in a tight loop.
    expect(refusedAt[1]! - refusedAt[0]!).toBeGreaterThanOrEqual(900);
    // Live from there on.
    await writer.getByTestId('quick-add').fill('made after the retries');
    await writer.getByTestId('quick-add').press('Enter');
    await taskItem(reader, 'made after the retries').waitFor({ timeout: 5_000 });
    expect(app.watch.cspViolations).toEqual([]);
  });
});
