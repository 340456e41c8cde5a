/**
 * Browser tests: Debian's Chromium through playwright-core, against the built
 * client served by a real server process. Every page is watched for dialogs,
 * requests to other origins, console errors and CSP violations.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core';
import { startNodeProcess, type NodeProcess } from './app.js';
import { serverEnvBase } from './env.js';

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

export const repoRoot = path.resolve(import.meta.dirname, '../..');
export const artifactsDir = path.join(repoRoot, 'test-artifacts');

function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
}

export { freePort } from './net.js';

/** The environment of a test-mode server with the offline model. */
export function e2eEnv(overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return { ...serverEnvBase(), ENVIRONMENT: 'test', AUTO_MIGRATE: 'false', ...overrides };
}

function startE2EServer(env: Record<string, string | undefined>): Promise<NodeProcess> {
  return startNodeProcess(env, 30_000);
}

/**
 * Starts the server and the browser together. When either fails, the other is stopped before the error is
 * thrown: a test file whose setup failed must not leave a server running (it would load the machine, and the
 * benchmarks, long after the run).
 */
async function startServerAndBrowser(env: Record<string, string | undefined>): Promise<[NodeProcess, Browser]> {
  const [server, browser] = await Promise.allSettled([startE2EServer(env), launchBrowser()]);
  if (server.status === 'fulfilled' && browser.status === 'fulfilled') return [server.value, browser.value];
  if (server.status === 'fulfilled') await server.value.stop();
  if (browser.status === 'fulfilled') await browser.value.close();
  throw server.status === 'rejected' ? server.reason : (browser as PromiseRejectedResult).reason;
}

export interface Watch {
  dialogs: string[];
  /** requests whose origin is not the app's */
  foreignRequests: string[];
  consoleErrors: string[];
  cspViolations: string[];
  pageErrors: string[];
  /** console errors matching these are expected (a server restart logs failed WebSocket attempts) */
  allow: RegExp[];
}

const cspMarker = '[csp-violation]';

/** Reports `securitypolicyviolation` events through the console, where the watcher hears them. */
const cspScript = `
  document.addEventListener('securitypolicyviolation', (e) => {
    console.warn(${JSON.stringify(cspMarker)} + ' ' + e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sourceFile || '') + ':' + e.lineNumber);
  });
`;

/** A browser context on `baseUrl` with every page watched; `colorScheme` light unless told. */
async function watchedContext(browser: Browser, baseUrl: string, options: { colorScheme?: 'light' | 'dark'; viewport?: { width: number; height: number } } = {}): Promise<{ context: BrowserContext; watch: Watch; newPage: () => Promise<Page> }> {
  const origin = new URL(baseUrl).origin;
  const context = await browser.newContext({
    baseURL: baseUrl,
    colorScheme: options.colorScheme ?? 'light',
    viewport: options.viewport ?? { width: 1280, height: 800 },
  });
  const watch: Watch = { dialogs: [], foreignRequests: [], consoleErrors: [], cspViolations: [], pageErrors: [], allow: [] };
  await context.addInitScript({ content: cspScript });
  context.on('request', (req) => {
    const url = req.url();
    if (url.startsWith('data:') || url.startsWith('blob:')) return;
    let reqOrigin: string;
    try {
      reqOrigin = new URL(url).origin;
    } catch {
      reqOrigin = url;
    }
    if (reqOrigin !== origin) watch.foreignRequests.push(url);
  });
  const onConsole = (msg: ConsoleMessage) => {
    const text = msg.text();
    if (text.startsWith(cspMarker) || /Content Security Policy/i.test(text)) watch.cspViolations.push(text);
    else if (msg.type() === 'error' && !watch.allow.some((re) => re.test(text))) watch.consoleErrors.push(text);
  };
  const newPage = async () => {
    const page = await context.newPage();
    page.on('console', onConsole);
    page.on('pageerror', (err) => watch.pageErrors.push(String(err)));
    page.on('dialog', (dialog) => {
      watch.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
      void dialog.dismiss();
    });
    return page;
  };
  return { context, watch, newPage };
}

/** Signs a new user up through the UI; leaves the page on the main screen. */
export async function signUpInUi(page: Page, user: { email: string; password: string; fullName?: string }): Promise<void> {
  await page.goto('/');
  await page.getByRole('tab', { name: 'Sign up' }).click();
  if (user.fullName) await page.getByLabel('Full name').fill(user.fullName);
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password', { exact: true }).fill(user.password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await waitLive(page);
}

export async function logInInUi(page: Page, user: { email: string; password: string }): Promise<void> {
  await page.getByRole('tab', { name: 'Log in' }).click();
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password', { exact: true }).fill(user.password);
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await waitLive(page);
}

/** The connection indicator in the given state (`live`, `reconnecting`, …). */
export function connectionState(page: Page, state: string) {
  return page.locator(`[data-testid="connection-status"][data-state="${state}"]`);
}

export async function waitLive(page: Page, timeout = 15_000): Promise<void> {
  await page.getByTestId('main-screen').waitFor({ timeout });
  await connectionState(page, 'live').waitFor({ timeout });
}

export async function sendChat(page: Page, text: string): Promise<void> {
  const input = page.getByTestId('composer-input');
  await input.fill(text);
  await input.press('Enter');
}

/** The task item whose title is exactly `title`. */
export function taskItem(page: Page, title: string) {
  return page.getByTestId('task-item').filter({ has: page.getByTestId('task-title').getByText(title, { exact: true }) });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(artifactsDir, { recursive: true });
  await page.screenshot({ path: path.join(artifactsDir, name) });
}

/** On a failed test: each page's screenshot and text, the watches and the server's log, under test-artifacts/failures. */
async function saveFailure(name: string, pages: (Page | undefined)[], watches: Watch[], server?: { logs: { lines: string[] } }): Promise<void> {
  const dir = path.join(artifactsDir, 'failures', name.replace(/[^a-z0-9]+/gi, '-').slice(0, 80));
  await mkdir(dir, { recursive: true });
  for (const [i, page] of pages.entries()) {
    if (!page || page.isClosed()) continue;
    await page.screenshot({ path: path.join(dir, `tab${i + 1}.png`) }).catch(() => undefined);
    const text = await page.locator('body').innerText().catch((err: unknown) => String(err));
    await writeFile(path.join(dir, `tab${i + 1}.txt`), text);
  }
  await writeFile(path.join(dir, 'watch.json'), JSON.stringify(watches, null, 2));
  if (server) await writeFile(path.join(dir, 'server.log'), server.logs.lines.join('\n'));
}

type Env = Record<string, string | undefined>;
type ContextOptions = Parameters<typeof watchedContext>[2];

/** A browser context whose pages are watched (see `Watch`). */
export type WatchedContext = Awaited<ReturnType<typeof watchedContext>>;

/** What `useBrowserApp` gives a describe block, from its first `beforeAll` on. */
export interface BrowserApp {
  /** the server's environment (for the command line, say) */
  readonly env: Env;
  readonly server: NodeProcess;
  readonly browser: Browser;
  /** the first context, made before the block's own `beforeAll` runs */
  readonly context: BrowserContext;
  readonly watch: Watch;
  /** the watches of every context, the first context's first */
  readonly watches: Watch[];
  /** A watched page of the first context. */
  newPage(): Promise<Page>;
  /** Another watched context (another user, another browser profile). */
  newContext(options?: ContextOptions): Promise<WatchedContext>;
  /** Starts the server again, on the same environment and so the same port if it names one, after a test stopped it. */
  startServer(): Promise<NodeProcess>;
}

/**
 * The server and Chromium of a describe block, with a watched context: started
 * before the block's tests (`env` is called then), closed after them. When a
 * test fails, every page opened through the app is saved with the watches and
 * the server's log (`saveFailure`). Hooks the block registers after this call
 * run after its `beforeAll` and before its `afterAll`.
 */
export function useBrowserApp(env: () => Env | Promise<Env>): BrowserApp {
  let started: { env: Env; server: NodeProcess; browser: Browser } | undefined;
  const contexts: WatchedContext[] = [];
  const pages: Page[] = [];
  const ready = () => {
    if (!started) throw new Error('useBrowserApp: the app starts in beforeAll');
    return started;
  };
  const app: BrowserApp = {
    get env() {
      return ready().env;
    },
    get server() {
      return ready().server;
    },
    get browser() {
      return ready().browser;
    },
    get context() {
      return contexts[0]!.context;
    },
    get watch() {
      return contexts[0]!.watch;
    },
    get watches() {
      return contexts.map((c) => c.watch);
    },
    newPage: () => contexts[0]!.newPage(),
    async newContext(contextOptions) {
      const made = await watchedContext(app.browser, app.server.url, contextOptions);
      const context: WatchedContext = {
        ...made,
        newPage: async () => {
          const page = await made.newPage();
          pages.push(page);
          return page;
        },
      };
      contexts.push(context);
      return context;
    },
    async startServer() {
      const s = ready();
      s.server = await startE2EServer(s.env);
      return s.server;
    },
  };
  beforeAll(async () => {
    const resolved = await env();
    const [server, browser] = await startServerAndBrowser(resolved);
    started = { env: resolved, server, browser };
    await app.newContext();
  });
  afterEach(async (ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    await saveFailure(ctx.task.name, pages, app.watches, started?.server);
  });
  afterAll(async () => {
    for (const { context } of contexts) await context.close();
    await started?.browser.close();
    await started?.server.stop();
  });
  return app;
}
