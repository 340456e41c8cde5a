/** The operators' `admin` command for tests: in this process against a test app, or as the built command line. */
import path from 'node:path';
import { runAdminCommand } from '../../server/features/auth/admins.js';
import { openOperatorSessions, type OperatorSessions } from '../../server/features/auth/operator-sessions.js';
import type { TestApp } from './app.js';
import { signUp, type SignedUp } from './users.js';
import { runProcess, type CommandResult } from './process.js';

const cliJs = path.resolve(import.meta.dirname, '../../dist/server/cli.js');

/** Runs `admin <args>` as the command line does, against `app`'s database, its security log going to `app`'s log. */
export async function adminCommand(app: TestApp, ...args: string[]): Promise<CommandResult> {
  const started = Date.now();
  const out: string[] = [];
  const err: string[] = [];
  let opened: Promise<OperatorSessions> | undefined;
  const code = await runAdminCommand(args, {
    users: app.deps.users,
    security: app.deps.securityRepository,
    sessions: app.deps.sessions,
    operatorSessions: () => (opened ??= openOperatorSessions(app.deps.config, { sessions: app.deps.sessions, logger: app.deps.logger })),
    logger: app.deps.logger,
    output: { out: (line) => out.push(line), err: (line) => err.push(line) },
  });
  await (await opened)?.close();
  return { code, stdout: out.map((l) => `${l}\n`).join(''), stderr: err.map((l) => `${l}\n`).join(''), ms: Date.now() - started };
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
