/**
 * A `task:sync` the server could not answer (`UNAVAILABLE`: its database
 * restarting) while the socket stays up, in Chromium. No push may come to show
 * the tab what it missed, so it must ask again by itself. The refusals are
 * made in the browser's WebSocket route, the server itself untouched.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { NodeProcess } from '../support/app.js';
import { strongPassword, uniqueEmail } from '../support/env.js';
import { e2eEnv, e2eHooks, signUpInUi, startServerAndBrowser, taskItem, waitLive, watchedContext, type Watch } from '../support/browser.js';

describe('a task:sync answered UNAVAILABLE', () => {
  let server: NodeProcess;
  let browser: Browser;
  let context: BrowserContext;
  let watch: Watch;
  let newPage: () => Promise<Page>;
  let writer: Page;
  let reader: Page;

  beforeAll(async () => {
    [server, browser] = await startServerAndBrowser(e2eEnv());
    ({ context, watch, newPage } = await watchedContext(browser, server.url));
  });

  e2eHooks(() => ({ server, browser, contexts: [context], pages: [writer, reader], watch }));

  it('is asked again until it is answered, and the tab shows the tasks', async () => {
    writer = await newPage();
    await signUpInUi(writer, { email: uniqueEmail('e2e-sync-retry'), password: strongPassword() });
    await writer.getByTestId('quick-add').fill('made before the tab opened');
    await writer.getByTestId('quick-add').press('Enter');
    await taskItem(writer, 'made before the tab opened').waitFor({ timeout: 5_000 });

    // The next tab's first two task:sync requests get the answer of a server whose database is away.
    reader = await newPage();
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
    expect(watch.cspViolations).toEqual([]);
  });
});
