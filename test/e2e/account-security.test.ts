/**
 * Account security in Chromium (issue 22, PROTOCOL §3b and §6.3b): a user
 * enrols two-factor sign-in from the account screen with the key it shows
 * (codes computed here with `otpauth`, as an authenticator app would), saves
 * the recovery codes from the screen, signs in with a code and then with a
 * recovery code; changes the password (other sessions signed out); resets a
 * forgotten one through the link a real local SMTP server received; sees the
 * notice of a sign-in from a new device and signs that session out; and reads
 * all of it in the security log. The server runs in production mode.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { productionEnv, strongPassword, uniqueEmail } from '../support/env.js';
import { RestClient } from '../support/http.js';
import { resetTokenIn, startSmtp, type TestSmtp } from '../support/smtp.js';
import { codeAt, freshCode, stepAt } from '../support/totp.js';
import { connectionState, freePort, screenshot, signUpInUi, useBrowserApp, waitLive } from '../support/browser.js';

/** A user agent of another device, for the new-device notice. */
const otherDeviceAgent = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';
const phoneAgent = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';

/** An authenticator app for one secret: each code of a later time step than the last (a code is accepted once, AUTH-13). */
function authenticator(secret: string) {
  let lastStep = -1;
  return {
    async code(): Promise<string> {
      const { code, step } = await freshCode(secret, lastStep);
      lastStep = step;
      return code;
    },
    /** a well-formed code of five minutes ago, outside the one step of drift */
    wrong: () => codeAt(secret, stepAt() - 10),
  };
}

describe('account security: two-factor, password change and reset, new-device notice, security log', () => {
  let mailbox: TestSmtp;
  let appUrl: string;
  // Registered before the app, so it runs after the app's afterAll: the server may still be sending mail.
  afterAll(async () => {
    await mailbox?.close();
  });
  const app = useBrowserApp(async () => {
    mailbox = await startSmtp();
    const port = await freePort();
    appUrl = `http://127.0.0.1:${port}`;
    return productionEnv({ AUTO_MIGRATE: 'false', PORT: String(port), APP_URL: appUrl, SMTP_URL: mailbox.url });
  });
  let page: Page;
  let other: Page;
  let phoneApp: ReturnType<typeof authenticator>;
  let recoveryCodes: string[] = [];
  const user = { email: uniqueEmail('e2e-security'), password: strongPassword(), fullName: 'Ada Secure' };

  beforeAll(async () => {
    page = await app.newPage();
    const b = await app.newContext();
    await b.context.setExtraHTTPHeaders({ 'user-agent': otherDeviceAgent });
    other = await b.newPage();
    // Refused logins and codes are part of the flows: the browser logs their 401s.
    for (const w of app.watches) w.allow.push(/40[139]|42[39]|Unauthorized/i);
    await signUpInUi(page, user);
  }, 60_000);

  async function openAccount(p: Page): Promise<void> {
    if (await p.getByTestId('account-screen').isVisible()) return;
    await p.getByTestId('open-account').click();
    await p.getByTestId('account-screen').waitFor();
  }

  async function logOut(p: Page): Promise<void> {
    await openAccount(p);
    await p.getByTestId('logout').click();
    await p.getByTestId('auth-screen').waitFor();
  }

  /** The password step of the login form; leaves the page where the server's answer takes it. */
  async function submitPassword(p: Page, password: string): Promise<void> {
    await p.getByRole('tab', { name: 'Log in' }).click();
    await p.getByLabel('Email').fill(user.email);
    await p.getByLabel('Password', { exact: true }).fill(password);
    await p.getByRole('button', { name: 'Log in', exact: true }).click();
  }

  it('[AUTH-18] a sign-in from a new device shows a notice in the other tabs, which signs that session out', { timeout: 60_000 }, async () => {
    await other.goto('/');
    await submitPassword(other, user.password);
    await waitLive(other);
    const notice = page.getByTestId('new-device-notice');
    await notice.waitFor({ timeout: 15_000 });
    await screenshot(page, 'new-device-notice.png');
    expect(await notice.textContent()).toMatch(/New sign-in:.*Firefox.*Windows.*from .*was this you\?/s);
    await notice.getByTestId('new-device-revoke').click();
    await notice.waitFor({ state: 'detached' });
    await other.getByTestId('auth-screen').waitFor({ timeout: 5_000 });
    expect(await other.getByTestId('signed-out-reason').textContent()).toMatch(/signed out/);

    // Another new device, which the user recognises: the notice goes and that session stays.
    const phone = new RestClient(app.server.url);
    const signedIn = await phone.post('/api/v1/auth/login', { email: user.email, password: user.password }, { headers: { 'user-agent': phoneAgent } });
    expect(signedIn.status).toBe(200);
    await expect.poll(() => notice.textContent(), { timeout: 15_000 }).toMatch(/Safari.*iOS/);
    await notice.getByTestId('new-device-yes').click();
    await notice.waitFor({ state: 'detached' });
    expect((await phone.post('/api/v1/auth/refresh')).status).toBe(200);
  });

  it('[AUTH-15] changing the password checks the current one and signs every other session out', { timeout: 60_000 }, async () => {
    // The other device signs in again (no notice now: it is known), to be signed out by the change.
    await submitPassword(other, user.password);
    await waitLive(other);

    await openAccount(page);
    const section = page.getByTestId('password-section');
    const newPassword = strongPassword();
    await section.getByTestId('password-current').fill(`${user.password}x`);
    await section.getByTestId('change-new').fill(newPassword);
    await section.getByTestId('change-repeat').fill(newPassword);
    await section.getByRole('button', { name: 'Change password' }).click();
    expect(await section.getByTestId('password-error').textContent()).toMatch(/current password is not right/);

    await section.getByTestId('password-current').fill(user.password);
    await section.getByRole('button', { name: 'Change password' }).click();
    expect(await section.getByTestId('password-changed').textContent()).toMatch(/other session was signed out/);
    user.password = newPassword;
    await other.getByTestId('auth-screen').waitFor({ timeout: 5_000 });
    expect(await other.getByTestId('signed-out-reason').textContent()).toMatch(/password was changed/);
    // This tab's session stays.
    await connectionState(page, 'live').waitFor();
  });

  it('[AUTH-13][AUTH-14] enrols two-factor from the account screen and shows the recovery codes once', { timeout: 60_000 }, async () => {
    // A second tab of the same session, on the account screen too: it hears the change (user:changed).
    const sameSession = await app.newPage();
    await sameSession.goto('/');
    await waitLive(sameSession);
    await openAccount(sameSession);
    expect(await sameSession.getByTestId('mfa-section').getAttribute('data-enabled')).toBe('false');
    await openAccount(page);
    const section = page.getByTestId('mfa-section');
    expect(await section.getAttribute('data-enabled')).toBe('false');
    await section.getByTestId('mfa-start').click();
    const secret = (await section.getByTestId('mfa-secret').textContent())!.replace(/\s+/g, '');
    expect(secret).toMatch(/^[A-Z2-7]{16,}$/);
    // The QR code is drawn in the page, as SVG.
    expect(await section.getByTestId('mfa-qr').locator('path').getAttribute('d')).toMatch(/^M\d+ \d+h1v1h-1z/);
    phoneApp = authenticator(secret);
    await section.scrollIntoViewIfNeeded();
    await screenshot(page, 'account-two-factor-setup.png');

    const form = section.getByTestId('mfa-enable');
    await form.getByTestId('mfa-enable-password').fill(user.password);
    await form.getByTestId('mfa-enable-code').fill(phoneApp.wrong());
    await form.getByRole('button', { name: 'Enable' }).click();
    expect(await form.getByTestId('mfa-enable-error').textContent()).toMatch(/not right/);
    await form.getByTestId('mfa-enable-code').fill(await phoneApp.code());
    await form.getByRole('button', { name: 'Enable' }).click();

    const codes = section.getByTestId('recovery-codes');
    await codes.waitFor();
    recoveryCodes = await codes.getByTestId('recovery-code').allTextContents();
    expect(recoveryCodes).toHaveLength(10);
    expect(new Set(recoveryCodes).size).toBe(10);
    await screenshot(page, 'account-recovery-codes.png');
    expect(await section.getAttribute('data-enabled')).toBe('true');
    await expect.poll(() => sameSession.getByTestId('mfa-section').getAttribute('data-enabled')).toBe('true');
    // Recovery codes show only in the tab that made them.
    expect(await sameSession.getByTestId('recovery-codes').count()).toBe(0);
    await sameSession.close();
    // Downloadable as a text file holding every code.
    const [download] = await Promise.all([page.waitForEvent('download'), codes.getByRole('button', { name: 'Download as .txt' }).click()]);
    expect(download.suggestedFilename()).toBe('sam-recovery-codes.txt');
    const saved = await new Promise<string>((resolve, reject) => {
      void download.createReadStream().then((stream) => {
        let text = '';
        stream.on('data', (c: Buffer) => (text += c.toString('utf8')));
        stream.on('end', () => resolve(text));
        stream.on('error', reject);
      }, reject);
    });
    for (const code of recoveryCodes) expect(saved).toContain(code);

    await codes.getByTestId('recovery-codes-saved').click();
    await codes.waitFor({ state: 'detached' });
    // Shown once: coming back to the screen does not show them again.
    await page.getByRole('button', { name: 'Back to Sam' }).click();
    await openAccount(page);
    expect(await page.getByTestId('recovery-codes').count()).toBe(0);
    await expect.poll(() => page.getByTestId('mfa-status').textContent()).toMatch(/On/);
  });

  it('[AUTH-13] signs in with a code from the app after the password; a wrong code keeps the step', { timeout: 60_000 }, async () => {
    await logOut(page);
    await submitPassword(page, user.password);
    const step = page.getByTestId('mfa-step');
    await step.waitFor();
    const input = step.getByLabel('Enter the 6-digit code from your authenticator app');
    expect(await input.getAttribute('inputmode')).toBe('numeric');
    expect(await input.getAttribute('autocomplete')).toBe('one-time-code');
    // The caret is in the code field.
    expect(await input.evaluate((el) => el === (el.ownerDocument as { activeElement: unknown }).activeElement)).toBe(true);

    await input.fill(phoneApp.wrong());
    await step.getByRole('button', { name: 'Verify' }).click();
    expect(await page.getByTestId('auth-error').textContent()).toMatch(/code is not right/);
    await screenshot(page, 'login-second-step.png');
    await step.waitFor();

    const code = await phoneApp.code();
    // Typed as an app shows it, in two groups.
    await input.fill(`${code.slice(0, 3)} ${code.slice(3)}`);
    await step.getByRole('button', { name: 'Verify' }).click();
    await waitLive(page);
  });

  it('[AUTH-14] signs in with a recovery code instead, which works only once', { timeout: 90_000 }, async () => {
    await logOut(page);
    await submitPassword(page, user.password);
    const step = page.getByTestId('mfa-step');
    await step.getByTestId('mfa-toggle-recovery').click();
    await step.getByLabel('Enter one of your recovery codes').fill(recoveryCodes[0]!);
    await step.getByRole('button', { name: 'Verify' }).click();
    await waitLive(page);

    // The same code again is refused; the app's code still finishes that sign-in.
    await logOut(page);
    await submitPassword(page, user.password);
    await step.getByTestId('mfa-toggle-recovery').click();
    await step.getByLabel('Enter one of your recovery codes').fill(recoveryCodes[0]!);
    await step.getByRole('button', { name: 'Verify' }).click();
    expect(await page.getByTestId('auth-error').textContent()).toMatch(/recovery code is not right, or it was used before/);
    await step.getByTestId('mfa-toggle-recovery').click();
    await step.getByLabel('Enter the 6-digit code from your authenticator app').fill(await phoneApp.code());
    await step.getByRole('button', { name: 'Verify' }).click();
    await waitLive(page);
  });

  // Each app code is of a later time step than the last one used, so this test may wait for the clock (30 s a step).
  it('[AUTH-14] regenerates the recovery codes and turns two-factor off with the password and a code', { timeout: 120_000 }, async () => {
    await openAccount(page);
    const section = page.getByTestId('mfa-section');
    await section.getByTestId('mfa-regenerate-start').click();
    const confirm = section.getByTestId('mfa-regenerate');
    await confirm.getByTestId('mfa-regenerate-password').fill(user.password);
    await confirm.getByTestId('mfa-regenerate-code').fill(await phoneApp.code());
    await confirm.getByRole('button', { name: 'Make new codes' }).click();
    const codes = section.getByTestId('recovery-codes');
    await codes.waitFor();
    const fresh = await codes.getByTestId('recovery-code').allTextContents();
    expect(fresh).toHaveLength(10);
    expect(fresh.filter((c) => recoveryCodes.includes(c))).toEqual([]);
    recoveryCodes = fresh;
    await codes.getByTestId('recovery-codes-saved').click();

    await section.getByTestId('mfa-disable-start').click();
    const off = section.getByTestId('mfa-disable');
    await off.getByTestId('mfa-disable-password').fill(user.password);
    // A recovery code serves as the current code too.
    await off.getByTestId('mfa-disable-code').fill(recoveryCodes[0]!);
    await off.getByRole('button', { name: 'Turn off' }).click();
    await expect.poll(() => section.getAttribute('data-enabled')).toBe('false');
    await section.getByTestId('mfa-start').waitFor();
  });

  it('[AUTH-16][AUTH-17] resets a forgotten password through the emailed link, which works once', { timeout: 60_000 }, async () => {
    await logOut(page);
    await page.getByTestId('forgot-link').click();
    const forgot = page.getByTestId('forgot-form');
    await forgot.getByLabel('Email').fill(user.email);
    await forgot.getByRole('button', { name: 'Send the link' }).click();
    await expect.poll(() => forgot.getByTestId('forgot-sent').textContent()).toMatch(/If an account exists for .* we sent it a link/);

    const mail = await mailbox.waitFor(user.email, (m) => m.text.includes('/reset-password#token='));
    const link = `${appUrl}/reset-password#token=${resetTokenIn(mail, appUrl)}`;
    await page.goto(link);
    const reset = page.getByTestId('reset-password');
    await reset.waitFor();
    // The token left the address bar (and the history entry) once read.
    expect(page.url()).not.toContain('token');
    const newPassword = strongPassword();
    await reset.getByTestId('reset-new').fill(newPassword);
    await reset.getByTestId('reset-repeat').fill(`${newPassword}x`);
    expect(await reset.getByRole('button', { name: 'Change password' }).isDisabled()).toBe(true);
    await reset.getByTestId('reset-repeat').fill(newPassword);
    await reset.getByRole('button', { name: 'Change password' }).click();
    await reset.getByTestId('reset-done').waitFor();
    user.password = newPassword;
    await reset.getByRole('button', { name: 'Log in' }).click();
    await submitPassword(page, user.password);
    await waitLive(page);

    // The same link again, signed in this time (the sign-in screen's own reset of the address does not apply): used.
    await page.goto(link);
    await reset.waitFor();
    expect(page.url()).toBe(`${appUrl}/reset-password`);
    const again = strongPassword();
    await reset.getByTestId('reset-new').fill(again);
    await reset.getByTestId('reset-repeat').fill(again);
    await reset.getByRole('button', { name: 'Change password' }).click();
    await page.getByTestId('reset-expired').waitFor();
    expect(await page.getByTestId('reset-expired').textContent()).toMatch(/expired or was already used/);
    await page.goto('/');
    await waitLive(page);
  });

  it('[AUTH-18] the security log on the account screen shows every event of these flows, a page at a time', { timeout: 60_000 }, async () => {
    // Sign-ins from the other (known) device, so that the log surely holds more than a page (20).
    for (let i = 0; i < 6; i++) {
      const res = await new RestClient(app.server.url).post('/api/v1/auth/login', { email: user.email, password: user.password }, { headers: { 'user-agent': otherDeviceAgent } });
      expect(res.status).toBe(200);
    }
    await openAccount(page);
    const log = page.getByTestId('security-log');
    await log.getByTestId('security-log-entry').first().waitFor();
    let pages = 1;
    while (await log.getByTestId('security-log-more').isVisible()) {
      const before = await log.getByTestId('security-log-entry').count();
      await log.getByTestId('security-log-more').click();
      await expect.poll(() => log.getByTestId('security-log-entry').count()).toBeGreaterThan(before);
      pages += 1;
    }
    expect(pages).toBeGreaterThan(1);
    await log.scrollIntoViewIfNeeded();
    await screenshot(page, 'security-log.png');
    const types = new Set(await log.getByTestId('security-log-entry').evaluateAll((els) => els.map((el) => el.getAttribute('data-type'))));
    for (const type of [
      'login_succeeded',
      'login_failed',
      'session_revoked',
      'password_changed',
      'mfa_enabled',
      'recovery_code_used',
      'recovery_codes_regenerated',
      'mfa_disabled',
      'password_reset_requested',
      'password_reset',
    ]) {
      expect(types, type).toContain(type);
    }
    expect(await log.locator('[data-type="mfa_enabled"]').first().textContent()).toMatch(/Two-factor turned on/);
  });

  it('saw no dialog, no foreign request, no CSP violation and no unexpected console error', () => {
    for (const w of app.watches) {
      expect(w.dialogs).toEqual([]);
      expect(w.foreignRequests).toEqual([]);
      expect(w.cspViolations).toEqual([]);
      expect(w.pageErrors).toEqual([]);
      expect(w.consoleErrors).toEqual([]);
    }
  });
});
