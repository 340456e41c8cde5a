/**
 * AUTH-16 when mail cannot go out: an SMTP server that is down, and no
 * SMTP_URL at all. Its own file (so its own database): the mail outbox is
 * shared by every node of a deployment, and these servers are deployments of
 * their own.
 */
import { describe, expect, it } from 'vitest';
import { productionEnv, serverEnvBase, strongPassword } from './support/env.js';
import { startTestApp } from './support/app.js';
import { RestClient } from './support/http.js';
import { signUp } from './support/users.js';
import { freePort, resetTokenIn, startSmtp } from './support/smtp.js';
import { ConfigError, loadConfig } from '../server/config.js';

const APP_URL = 'https://sam.example.test';
const post = (url: string, path: string, body: unknown) => new RestClient(url).post(`/api/v1/auth${path}`, body);
const forgot = (url: string, email: string) => post(url, '/password/forgot', { email });

describe('AUTH-16 mail delivery faults', () => {
  it('[AUTH-16] SMTP server down: the request still answers 202, the failure is logged and retried, and the link arrives once the server is up', async () => {
    const port = await freePort();
    await using app = await startTestApp(productionEnv({ SMTP_URL: `smtp://127.0.0.1:${port}`, APP_URL, RATE_LIMIT_PER_MINUTE: '100000' }));
    const user = await signUp(app.url);
    const res = await forgot(app.url, user.email);
    expect(res.status).toBe(202);
    const failed = await app.logs.waitFor((r) => r.event === 'mail' && r.outcome === 'failed', 20_000);
    expect(failed.level).toBe('warn');
    expect(JSON.stringify(failed)).not.toMatch(/token=/);
    const [queued] = await app.deps.sql<{ body: string }[]>`select body from mail_outbox where recipient = ${user.email}`;
    expect(queued!.body).not.toContain('reset-password');
    await using late = await startSmtp(port);
    const mail = await late.waitFor(user.email, undefined, 60_000);
    const token = resetTokenIn(mail, APP_URL);
    expect((await post(app.url, '/password/reset', { token, password: strongPassword() })).status).toBe(204);
    expect(late.received.filter((m) => m.to.includes(user.email))).toHaveLength(1);
  }, 90_000);

  it('[AUTH-16] without SMTP_URL: in production the request answers 202 and an error is logged; elsewhere the message goes to the log as a development mailbox', async () => {
    {
      await using app = await startTestApp(productionEnv({ APP_URL }));
      const user = await signUp(app.url);
      expect((await forgot(app.url, user.email)).status).toBe(202);
      const error = await app.logs.waitFor((r) => r.level === 'error' && /SMTP_URL/.test(String(r.msg)));
      expect(error.event).toBe('mail');
    }
    {
      await using app = await startTestApp({ ...serverEnvBase(), ENVIRONMENT: 'test', APP_URL });
      const user = await signUp(app.url);
      expect((await forgot(app.url, user.email)).status).toBe(202);
      const mail = await app.logs.waitFor((r) => r.mailbox === 'development' && r.to === user.email);
      expect(String(mail.text)).toMatch(new RegExp(`^${APP_URL.replace(/\./g, '\\.')}/reset-password#token=[A-Za-z0-9_-]{43}$`, 'm'));
    }
  }, 60_000);
});

describe('CFG-1 mail configuration', () => {
  it('[CFG-1] SMTP_URL must be smtp: or smtps:, APP_URL http: or https:; production starts without SMTP_URL; APP_URL defaults to the own origin', () => {
    const problems = (() => {
      try {
        loadConfig(productionEnv({ SMTP_URL: 'http://mail.example.test', APP_URL: 'ftp://sam.example.test' }));
        return '';
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
    })();
    expect(problems).toMatch(/SMTP_URL: must be a smtp or smtps URL/);
    expect(problems).toMatch(/APP_URL: must be a http or https URL/);
    const config = loadConfig(productionEnv({ PORT: '4321' }));
    expect(config.smtpUrl).toBeUndefined();
    expect(config.appUrl).toBe('http://localhost:4321');
    expect(config.mailFrom).toBe('Sam <no-reply@localhost>');
    expect(loadConfig(productionEnv({ APP_URL: 'https://sam.example.test/', SMTP_URL: 'smtps://mail.example.test:465' })).appUrl).toBe('https://sam.example.test');
  });
});
