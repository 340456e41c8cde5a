/** The operators' `admin` command for tests: in this process against a test app, or as the built command line. */
import path from 'node:path';
import { spawn } from 'node:child_process';
import { runAdminCommand } from '../../server/features/auth/admins.js';
import type { TestApp } from './app.js';
import { signUp, type SignedUp } from './users.js';

const cliJs = path.resolve(import.meta.dirname, '../../dist/server/cli.js');

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `admin <args>` as the command line does, against `app`'s database, its security log going to `app`'s log. */
export async function adminCommand(app: TestApp, ...args: string[]): Promise<CommandResult> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runAdminCommand(args, {
    users: app.deps.users,
    logger: app.deps.logger,
    output: { out: (line) => out.push(line), err: (line) => err.push(line) },
  });
  return { code, stdout: out.map((l) => `${l}\n`).join(''), stderr: err.map((l) => `${l}\n`).join('') };
}

/** Runs a command (`process.execPath` by default) with exactly `env` (and PATH) until it exits. */
export function runProcess(args: string[], env: Record<string, string | undefined>, options: { command?: string; cwd?: string; timeoutMs?: number } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(options.command ?? process.execPath, args, {
      cwd: options.cwd,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not exit within ${options.timeoutMs ?? 30_000} ms; stderr: ${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The built command line, as a deployment runs it: `node dist/server/cli.js <args>` (run `npm run build:server` first). */
export function runCli(env: Record<string, string | undefined>, ...args: string[]): Promise<CommandResult> {
  return runProcess([cliJs, ...args], env);
}

/**
 * A new user whom an operator made an admin, with an access token that says so: the grant shows from the
 * account's next token, so this refreshes once after it.
 */
export async function signUpAdmin(app: TestApp, fields: { email?: string } = {}): Promise<SignedUp> {
  const user = await signUp(app.url, fields);
  const granted = await adminCommand(app, 'grant', user.email);
  if (granted.code !== 0) throw new Error(`grant failed: ${granted.stderr}`);
  const refreshed = await user.client.post<{ accessToken: string; expiresAt: string }>('/api/v1/auth/refresh');
  if (refreshed.status !== 200) throw new Error(`refresh failed: ${refreshed.status}`);
  return { ...user, auth: { ...user.auth, accessToken: refreshed.body.accessToken, expiresAt: refreshed.body.expiresAt, user: { ...user.auth.user, role: 'admin' } } };
}
