/**
 * WCAG 2.1 A and AA where a machine can tell (issue 20): axe-core scans every
 * screen of the built client in Chromium — login, sign-up, the main screen
 * with realistic content (tasks of every status, a project, deadlines, a
 * completed and a deleted task, chats with the assistant's answers), the
 * account and the operators' page — each in the light and the dark theme, and
 * the main screen's panes at a phone's width too. Any violation fails the test
 * with its rule, impact, elements and axe's summary.
 *
 * axe is put into the page with `page.evaluate(source)`, not `addScriptTag`:
 * the app's CSP (`script-src 'self'`, server/http/security.ts) refuses inline
 * scripts, and the scan must see the page under its real policy, not with
 * `bypassCSP`. An evaluation through the DevTools protocol is not subject to
 * the page's CSP, and the CSP watcher checks at the end that none was reported.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CDPSession, Page } from 'playwright-core';
import { strongPassword, uniqueEmail } from '../support/env.js';
import {
  artifactsDir,
  e2eEnv,
  logInInUi,
  sendChat,
  signUpInUi,
  taskItem,
  useBrowserApp,
  waitLive,
  type Watch,
} from '../support/browser.js';
import { runCli } from '../support/admin.js';
import { signUp } from '../support/users.js';

const axeSource = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
/** The success criteria of WCAG 2.0 and 2.1, levels A and AA. */
const wcagTags = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const themes = ['light', 'dark'] as const;
type ThemeName = (typeof themes)[number];

/** What the test reads of axe's results (the page has no DOM types here). */
interface Violation {
  id: string;
  impact: string | null;
  help: string;
  helpUrl: string;
  nodes: { target: string[]; summary: string }[];
}
interface Scan {
  name: string;
  violations: Violation[];
  /** what axe could not decide (e.g. text over an image): kept in the report for a person to look at */
  incomplete: { id: string; nodes: { target: string[]; summary: string }[] }[];
  passes: number;
}

const scans: Scan[] = [];
/** Each scan's screenshot, and report.json with every scan's results. */
const reportDir = path.join(artifactsDir, 'a11y');

/** Puts axe-core into the page once per document (see the file's comment for why not a script tag). */
async function injectAxe(page: Page): Promise<void> {
  if (await page.evaluate('typeof window.axe === "object"')) return;
  await page.evaluate(axeSource);
  expect(await page.evaluate('typeof window.axe === "object" && window.axe.version')).toBe('4.14.1');
}

/** Waits until no CSS transition runs (a theme change fades some backgrounds) and two frames are drawn. */
async function settle(page: Page): Promise<void> {
  // A function, not a string: a string predicate is run with eval, which the app's CSP refuses.
  await page.waitForFunction(
    () => {
      type Doc = { getAnimations(): { playState: string }[] };
      const transition = (globalThis as unknown as { CSSTransition: new () => unknown }).CSSTransition;
      return (globalThis as unknown as { document: Doc }).document.getAnimations().every((a) => !(a instanceof transition) || a.playState !== 'running');
    },
    undefined,
    { timeout: 5_000 },
  );
  await page.evaluate('new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))');
}

/** Runs axe on the whole document, the WCAG 2.0/2.1 A and AA rules unless told which; keeps a screenshot. */
async function axeScan(page: Page, name: string, runOnly: { type: 'tag' | 'rule'; values: string[] } = { type: 'tag', values: wcagTags }): Promise<Scan> {
  await injectAxe(page);
  const result = await page.evaluate(async (only: { type: string; values: string[] }) => {
    type AxeNode = { target: unknown[]; failureSummary?: string };
    type AxeRule = { id: string; impact?: string | null; help: string; helpUrl: string; nodes: AxeNode[] };
    type Axe = { run(options: unknown): Promise<{ violations: AxeRule[]; incomplete: AxeRule[]; passes: AxeRule[] }> };
    const axe = (globalThis as unknown as { axe: Axe }).axe;
    const r = await axe.run({ runOnly: only, resultTypes: ['violations', 'incomplete'] });
    const nodes = (v: AxeRule) => v.nodes.map((n) => ({ target: n.target.map(String), summary: (n.failureSummary ?? '').replace(/\s+/g, ' ').trim() }));
    return {
      violations: r.violations.map((v) => ({ id: v.id, impact: v.impact ?? null, help: v.help, helpUrl: v.helpUrl, nodes: nodes(v) })),
      incomplete: r.incomplete.map((v) => ({ id: v.id, nodes: nodes(v) })),
      passes: r.passes.length,
    };
  }, runOnly);
  const scan = { name, ...result };
  scans.push(scan);
  await mkdir(reportDir, { recursive: true });
  await page.screenshot({ path: path.join(reportDir, `${name.replace(/[^a-z0-9]+/gi, '-')}.png`) });
  return scan;
}

/** One line per violation and one per element: what a failing test prints. */
function describeViolations(scan: Scan): string[] {
  return scan.violations.flatMap((v) => [
    `[${scan.name}] ${v.id} (${v.impact ?? 'no impact'}): ${v.help} — ${v.nodes.length} element${v.nodes.length === 1 ? '' : 's'} (${v.helpUrl})`,
    ...v.nodes.map((n) => `    ${n.target.join(' >> ')} — ${n.summary}`),
  ]);
}

/** The page's background in each theme (--bg in client/src/app.css): proof that the theme is in effect. */
const pageBackground: Record<ThemeName, string> = { light: 'rgb(246, 247, 249)', dark: 'rgb(17, 20, 24)' };

const devtools = new WeakMap<Page, CDPSession>();

/**
 * Holds every animation and transition of the page at its start (the DevTools animation clock at rate 0), or
 * lets them run again. Held, a scan sees the first frame after a change: a card that fades to the new theme
 * while its text switched at once shows there, as white text on a still white card.
 */
async function holdAnimations(page: Page, hold: boolean): Promise<void> {
  let cdp = devtools.get(page);
  if (!cdp) {
    cdp = await page.context().newCDPSession(page);
    await cdp.send('Animation.enable');
    devtools.set(page, cdp);
  }
  await cdp.send('Animation.setPlaybackRate', { playbackRate: hold ? 0 : 1 });
}

/**
 * Changes the theme with `change`, then scans the first frame after it for contrast (animations held) and,
 * once everything has settled, the whole page. Returns the violations of both.
 */
async function scanThroughChange(page: Page, name: string, theme: ThemeName, change: () => Promise<void>): Promise<string[]> {
  await injectAxe(page);
  await settle(page);
  await holdAnimations(page, true);
  let first: Scan;
  try {
    await change();
    await expect.poll(() => page.evaluate('getComputedStyle(document.body).backgroundColor')).toBe(pageBackground[theme]);
    first = await axeScan(page, `${name}, ${theme}, first frame`, { type: 'rule', values: ['color-contrast'] });
  } finally {
    await holdAnimations(page, false);
  }
  expect(first.passes + first.violations.length, `${first.name}: axe checked no contrast`).toBeGreaterThanOrEqual(1);
  await settle(page);
  const settled = await axeScan(page, `${name}, ${theme}`);
  expect(settled.passes, `${settled.name}: axe checked no rule`).toBeGreaterThan(5);
  return [...describeViolations(first), ...describeViolations(settled)];
}

/**
 * Scans the page in the light and then the dark theme, set as a user does with the toggle in the header (a
 * browser that prefers light shows light before any choice; a choice is kept in the browser). Each change of
 * theme is scanned at its first frame too. Fails listing every violation found.
 */
async function expectAccessible(page: Page, name: string): Promise<void> {
  const found: string[] = [];
  const toggle = page.getByTestId('theme-toggle').first();
  for (const theme of themes) {
    const pressed = String(theme === 'dark');
    if ((await toggle.getAttribute('aria-pressed')) === pressed) {
      await expect.poll(() => page.evaluate('getComputedStyle(document.body).backgroundColor')).toBe(pageBackground[theme]);
      await settle(page);
      const scan = await axeScan(page, `${name}, ${theme}`);
      expect(scan.passes, `${scan.name}: axe checked no rule`).toBeGreaterThan(5);
      found.push(...describeViolations(scan));
      continue;
    }
    found.push(
      ...(await scanThroughChange(page, name, theme, async () => {
        await toggle.click();
        await expect.poll(() => toggle.getAttribute('aria-pressed')).toBe(pressed);
        expect(await page.evaluate(`localStorage.getItem('sam-theme')`)).toBe(theme);
      })),
    );
  }
  expect(found, `axe found WCAG 2.1 A/AA violations:\n${found.join('\n')}\n`).toEqual([]);
}

/** Back on the main screen, wherever a failed test left the page. */
async function mainScreen(page: Page): Promise<void> {
  if (!(await page.getByTestId('main-screen').isVisible())) await page.getByRole('button', { name: 'Back to Sam' }).first().click();
  await waitLive(page);
}

async function quickAdd(page: Page, title: string): Promise<void> {
  await page.getByTestId('quick-add').fill(title);
  await page.getByTestId('quick-add').press('Enter');
  await taskItem(page, title).waitFor();
}

/**
 * Scans something that closes when the page is clicked elsewhere, or that makes the rest of the page inert (a
 * popup, a modal dialog): in each theme, the theme is set first and then `open` shows it again.
 */
async function expectPopupAccessible(page: Page, name: string, open: () => Promise<void>, close: () => Promise<void>): Promise<void> {
  const found: string[] = [];
  const toggle = page.getByTestId('theme-toggle').first();
  for (const theme of themes) {
    if ((await toggle.getAttribute('aria-pressed')) !== String(theme === 'dark')) await toggle.click();
    await expect.poll(() => page.evaluate('getComputedStyle(document.body).backgroundColor')).toBe(pageBackground[theme]);
    await open();
    await settle(page);
    const scan = await axeScan(page, `${name}, ${theme}`);
    expect(scan.passes, `${scan.name}: axe checked no rule`).toBeGreaterThan(5);
    found.push(...describeViolations(scan));
    await close();
  }
  expect(found, `axe found WCAG 2.1 A/AA violations:\n${found.join('\n')}\n`).toEqual([]);
}

const isoDay = (offsetDays: number) => new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);

async function waitForAnswers(page: Page, count: number): Promise<void> {
  await expect
    .poll(() => page.locator('[data-testid="message"][data-role="assistant"][data-status="complete"]').count(), { timeout: 20_000 })
    .toBe(count);
}

/** Opens a task's editor, lets `fill` set fields in it, saves, and waits for the editor to close. */
async function editTask(page: Page, title: string, fill: (form: ReturnType<Page['locator']>) => Promise<void>): Promise<void> {
  await taskItem(page, title).getByTestId('edit-task').click();
  const form = page.getByRole('form', { name: `Edit ${title}` });
  await form.waitFor();
  await fill(form);
  await form.getByRole('button', { name: 'Save', exact: true }).click();
  await form.waitFor({ state: 'detached' });
}

describe('accessibility: axe-core finds no WCAG 2.1 A/AA violation on any screen, light or dark', () => {
  const app = useBrowserApp(() => e2eEnv());
  let adminWatch: Watch;
  let visitorWatch: Watch;
  let page: Page;
  let visitor: Page;
  const admin = { email: uniqueEmail('a11y-admin'), password: strongPassword(), fullName: 'Grace Operator' };
  const other = { email: uniqueEmail('a11y-user'), password: strongPassword(), fullName: 'Uma User' };

  beforeAll(async () => {
    // An operator's account, made admin with the built command line as in a deployment.
    await signUp(app.server.url, { ...admin, timezone: 'UTC' });
    const granted = await runCli(app.env, 'admin', 'grant', admin.email);
    expect(granted.code, granted.stderr).toBe(0);
    adminWatch = app.watch;
    page = await app.newPage();
    const v = await app.newContext();
    visitorWatch = v.watch;
    visitor = await v.newPage();
  });

  it('the login screen, empty and with a refusal shown', { timeout: 60_000 }, async () => {
    await visitor.goto('/');
    await visitor.getByTestId('auth-screen').waitFor();
    await expectAccessible(visitor, 'login');

    // A refused login: the error box is part of the screen a user sees.
    visitorWatch.allow.push(/401|Unauthorized/i);
    await visitor.getByLabel('Email').fill(uniqueEmail('a11y-nobody'));
    await visitor.getByLabel('Password', { exact: true }).fill(strongPassword());
    await visitor.getByRole('button', { name: 'Log in', exact: true }).click();
    await visitor.getByTestId('auth-error').waitFor();
    await expectAccessible(visitor, 'login with an error');

    // The forgotten-password form (issue 22).
    await visitor.getByTestId('forgot-link').click();
    await visitor.getByTestId('forgot-form').waitFor();
    await expectAccessible(visitor, 'forgotten password');
    await visitor.getByRole('button', { name: 'Back to log in' }).click();
    // The page a reset link opens, its rules half met.
    await visitor.goto('/reset-password#token=a11y-scan');
    await visitor.getByTestId('reset-new').fill('short');
    await expectAccessible(visitor, 'password reset');
    await visitor.goto('/');
    await visitor.getByTestId('auth-screen').waitFor();
  });

  it('the sign-up tab, with the password rules half met', { timeout: 60_000 }, async () => {
    await visitor.getByRole('tab', { name: 'Sign up' }).click();
    await visitor.getByLabel('Password', { exact: true }).fill('short');
    await expect.poll(() => visitor.getByTestId('password-rules').locator('li[data-met="false"]').count()).toBeGreaterThan(0);
    await expect.poll(() => visitor.getByTestId('password-rules').locator('li[data-met="true"]').count()).toBeGreaterThan(0);
    await expectAccessible(visitor, 'sign-up');
    // The visitor becomes a user who stays online, for the operators' list of users.
    await signUpInUi(visitor, other);
  });

  it('the main screen when the system turns dark and the user made no choice in Sam', { timeout: 60_000 }, async () => {
    // No choice: the documented key removed, so the page follows the browser's preference.
    await visitor.evaluate(`localStorage.removeItem('sam-theme')`);
    await visitor.reload();
    await waitLive(visitor);
    expect(await visitor.evaluate('document.documentElement.dataset.theme ?? null')).toBe(null);
    for (const title of ['pack for the trip', 'book the train']) await quickAdd(visitor, title);
    await settle(visitor);
    const light = await axeScan(visitor, 'main, system light');
    const found = [
      ...describeViolations(light),
      ...(await scanThroughChange(visitor, 'main, system', 'dark', () => visitor.emulateMedia({ colorScheme: 'dark' }))),
    ];
    expect(await visitor.getByTestId('theme-toggle').getAttribute('aria-pressed')).toBe('true');
    await visitor.emulateMedia({ colorScheme: 'light' });
    expect(found, `axe found WCAG 2.1 A/AA violations:\n${found.join('\n')}\n`).toEqual([]);
  });

  it('prepares the main screen as a user leaves it: chats, tasks of every status, a project, deadlines', { timeout: 120_000 }, async () => {
    await page.goto('/');
    await logInInUi(page, admin);

    await sendChat(page, 'Hello Sam, how are you?');
    await waitForAnswers(page, 1);
    await sendChat(page, 'add task: buy milk');
    await waitForAnswers(page, 2);
    await page.locator('[data-testid="tool-call"][data-tool="create_task"]').waitFor();
    await taskItem(page, 'buy milk').waitFor();

    for (const title of ['write the quarterly report', 'call the plumber', 'renew passport', 'water the plants', 'old idea']) {
      await page.getByTestId('quick-add').fill(title);
      await page.getByTestId('quick-add').press('Enter');
      await taskItem(page, title).waitFor();
    }
    await editTask(page, 'write the quarterly report', async (form) => {
      await form.getByLabel('Notes').fill('Figures from finance, then the summary.');
      await form.getByLabel('Status').selectOption('in_progress');
      await form.getByLabel('Deadline').fill(isoDay(2));
      await form.getByLabel('Project').fill('work');
      await form.getByLabel('Intensity').selectOption('5');
      await form.getByTestId('task-form-remind').fill(`${isoDay(1)}T09:00`);
    });
    await editTask(page, 'renew passport', async (form) => {
      await form.getByLabel('Deadline').fill(isoDay(-3)); // overdue
      await form.getByLabel('Project').fill('home');
      await form.getByLabel('call the plumber').check(); // blocked by it
    });
    await editTask(page, 'water the plants', async (form) => {
      await form.getByLabel('Deadline').fill(isoDay(0));
      await form.getByLabel('Every').selectOption('weekly');
    });
    await editTask(page, 'call the plumber', async (form) => {
      await form.getByLabel('Status').selectOption('waiting_on');
      await form.getByLabel('Waiting on', { exact: true }).fill('the landlord');
    });
    await taskItem(page, 'buy milk').getByTestId('complete-task').click();
    await expect.poll(() => page.getByTestId('count-completed').textContent()).toBe('1');
    await taskItem(page, 'old idea').getByTestId('delete-task').click();
    await expect.poll(() => page.getByTestId('count-deleted').textContent()).toBe('1');

    // A second conversation, so the list has a current one and another.
    await page.getByTestId('new-conversation').click();
    await sendChat(page, 'what should I do next?');
    await waitForAnswers(page, 1);
    await expect.poll(() => page.getByTestId('conversation-item').count()).toBe(2);
    // The assistant's task is no longer marked as new.
    await expect.poll(() => page.locator('[data-testid="task-item"][data-highlighted="true"]').count(), { timeout: 10_000 }).toBe(0);
    await page.getByTestId('next-title').waitFor();
    // The pick's line reads as the list's chips do, its parts apart: "3 days overdue · ●●● intensity 3".
    const meta = (await page.getByTestId('next-meta').textContent())?.replace(/\s+/g, ' ').trim();
    expect(meta).toMatch(/^((Due \S.*|\d+ days overdue) · )?●{1,5} intensity [1-5]$/);
  });

  it('the main screen: active tasks, the next pick, chats with answers', { timeout: 60_000 }, async () => {
    await page.getByTestId('view-active').click();
    expect(await page.getByTestId('task-item').count()).toBeGreaterThanOrEqual(3);
    await expectAccessible(page, 'main, active tasks');
  });

  it('the main screen: the waiting, completed and trash views', { timeout: 90_000 }, async () => {
    for (const view of ['waiting', 'completed', 'deleted'] as const) {
      await page.getByTestId(`view-${view}`).click();
      await page.getByTestId('task-item').first().waitFor();
      await expectAccessible(page, `main, ${view} view`);
    }
    await page.getByTestId('view-active').click();
  });

  it('the main screen with a task being edited and the new-task details open', { timeout: 60_000 }, async () => {
    await page.getByTestId('view-active').click();
    await taskItem(page, 'renew passport').getByTestId('edit-task').click();
    await page.getByRole('button', { name: 'More…' }).click();
    await page.locator('#new-task-details').waitFor();
    // Quick-add showing what it understood, before saving.
    await page.getByTestId('quick-add').fill('call mom fri 5pm #family !4 every week');
    await page.getByTestId('quick-add-preview').waitFor();
    await expectAccessible(page, 'main, forms open');
    await page.getByTestId('quick-add').fill('');
    await page.getByRole('button', { name: 'Less' }).click();
    await page.getByRole('form', { name: 'Edit renew passport' }).getByRole('button', { name: 'Cancel' }).click();
  });

  it('the keyboard shortcuts overlay', { timeout: 60_000 }, async () => {
    const overlay = page.getByTestId('shortcuts-overlay');
    await expectPopupAccessible(
      page,
      'shortcuts overlay',
      async () => {
        await page.evaluate('document.activeElement?.blur()');
        await page.keyboard.press('?');
        await overlay.waitFor();
      },
      async () => {
        await overlay.getByRole('button', { name: 'Close' }).click();
        await overlay.waitFor({ state: 'hidden' });
      },
    );
  });

  it("a reminder falls due: its toast, the bell's count and the bell's list", { timeout: 60_000 }, async () => {
    await page.getByTestId('view-active').click();
    // A minute ago on the user's clock (UTC): it fires at once, marked late.
    await editTask(page, 'water the plants', (form) => form.getByTestId('task-form-remind').fill(new Date(Date.now() - 60_000).toISOString().slice(0, 16)));
    await page.getByTestId('reminder-toast').first().waitFor({ timeout: 15_000 });
    await expect.poll(() => page.getByTestId('reminder-bell').getAttribute('aria-label')).toBe('Reminders: 1 due');
    try {
      await expectAccessible(page, 'a due reminder');
      const list = page.getByTestId('reminder-list');
      await expectPopupAccessible(
        page,
        "the bell's list",
        async () => {
          await page.getByTestId('reminder-bell').click();
          await list.waitFor();
        },
        async () => {
          await list.getByRole('button', { name: 'Close' }).click();
          await list.waitFor({ state: 'detached' });
        },
      );
    } finally {
      // Snoozed for an hour, the toast goes (it would stay over every screen scanned next).
      await page.getByTestId('reminder-toast').first().getByTestId('snooze-1h').click();
      await page.getByTestId('reminder-toast').waitFor({ state: 'detached' });
    }
  });

  it('the account screen', { timeout: 60_000 }, async () => {
    await mainScreen(page);
    await page.getByTestId('open-account').click();
    await page.getByTestId('account-screen').waitFor();
    await expect.poll(() => page.getByTestId('session-list').locator('li').count()).toBeGreaterThanOrEqual(1);
    await expectAccessible(page, 'account');
    // Two-factor enrolment with its QR code, key and form (issue 22).
    await page.getByTestId('mfa-start').click();
    await page.getByTestId('mfa-setup').waitFor();
    await expectAccessible(page, 'account, two-factor setup');
    await page.getByTestId('mfa-enable').getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('button', { name: 'Back to Sam' }).click();
    await waitLive(page);
  });

  it("the operators' page, with live figures, charts and the users online", { timeout: 60_000 }, async () => {
    await mainScreen(page);
    await page.getByTestId('open-ops').click();
    await page.locator('[data-testid="ops-status"][data-state="live"]').waitFor({ timeout: 10_000 });
    await page.getByTestId('ops-node').first().waitFor();
    await page.getByTestId('ops-refresh-users').click();
    const row = page.locator(`[data-testid="ops-user"][data-email="${other.email}"]`);
    await row.waitFor();
    // One row asking for a confirmation, as it looks just before a disconnect.
    await row.getByTestId('ops-disconnect').click();
    await row.getByTestId('ops-disconnect-confirm').waitFor();
    // Tall enough for the whole page: axe cannot tell the contrast of text scrolled out of its container.
    await page.setViewportSize({ width: 1280, height: 2400 });
    try {
      await expectAccessible(page, 'ops');
    } finally {
      await page.setViewportSize({ width: 1280, height: 800 });
    }
    await row.getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('button', { name: 'Back to Sam' }).click();
    await waitLive(page);
  });

  it("the main screen's panes at a phone's width", { timeout: 90_000 }, async () => {
    await mainScreen(page);
    await page.setViewportSize({ width: 375, height: 780 });
    const panes = page.getByRole('navigation', { name: 'Panes' });
    for (const pane of ['Chats', 'Chat', 'Tasks']) {
      await panes.getByRole('button', { name: pane, exact: true }).click();
      await expectAccessible(page, `phone, ${pane} pane`);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('scanned without a CSP violation, a page error or, for the signed-in user, a console error', async () => {
    await mkdir(reportDir, { recursive: true });
    await writeFile(path.join(reportDir, 'report.json'), JSON.stringify(scans, null, 2));
    expect(scans.length).toBeGreaterThanOrEqual(50);
    for (const watch of [adminWatch, visitorWatch]) {
      expect(watch.dialogs).toEqual([]);
      expect(watch.foreignRequests).toEqual([]);
      expect(watch.cspViolations).toEqual([]);
      expect(watch.pageErrors).toEqual([]);
    }
    expect(adminWatch.consoleErrors).toEqual([]);
  });
});
