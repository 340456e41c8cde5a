/**
 * The operators' grants of the admin role (PROTOCOL §3a): `grant <email>`,
 * `revoke <email>` and `list`, run by the command line (`server/cli.ts`), never
 * by signing up. A grant takes effect at the account's next token (a refresh
 * or a login); a revoke at once for `/ops`: every node re-reads the role of its
 * `/ops` sockets each second and closes those that lost it (`role_changed`).
 * Every grant and revoke is a security log record.
 *
 * Beside them, the operators' sign-outs (`sign-out <email>`, `sign-out --all`
 * after a restore) and `disconnect <email>`, on every node
 * (`operator-sessions.ts`).
 */
import os from 'node:os';
import { email as emailSchema } from '../../../shared/schemas/auth.js';
import { maskEmail, securityLog, type Logger } from '../../logger.js';
import type { UsersRepository } from './users.repository.js';
import type { NewSecurityEvent, SecurityRepository } from '../security/security.repository.js';
import type { SessionsRepository } from './sessions.repository.js';
import type { OperatorSessions } from './operator-sessions.js';

/** security log records per INSERT when every account is signed out */
const SECURITY_EVENT_BATCH = 1_000;

export const adminUsage = [
  'usage: npm run admin -- <command>   (in a deployment: node dist/server/cli.js admin <command>)',
  '  grant <email>    give the existing account the admin role (from its next token)',
  '  revoke <email>   take it back (its /ops sockets close within 2 s)',
  '  list             the admins, one email a line',
  '  sign-out <email> revoke every session of the account and close its sockets on every node (session:revoked)',
  '  sign-out --all --yes',
  '                   the same for every account (after a restore from a backup); without --yes, says what it would do',
  '  disconnect <email>',
  '                   close the account\'s sockets on every node, revoking nothing (its tabs reconnect)',
  '  security-log [--email <email>] [--limit <n>]',
  '                   the security log, newest first, one JSON object a line (default 100, at most 10000)',
].join('\n');

export interface CommandOutput {
  /** the command's result (stdout) */
  out(line: string): void;
  /** messages for the operator (stderr) */
  err(line: string): void;
}

/** Runs `admin <args>`; resolves the exit code: 0 done, 1 no such account, 2 a usage error. */
export async function runAdminCommand(
  args: readonly string[],
  deps: {
    users: UsersRepository;
    security: Pick<SecurityRepository, 'insertEvents' | 'operatorPage'>;
    sessions: Pick<SessionsRepository, 'openCount'>;
    /** Redis and the nodes, reached only by the commands that need them */
    operatorSessions: () => Promise<OperatorSessions>;
    logger: Logger;
    output: CommandOutput;
  },
): Promise<number> {
  const { users, logger, output } = deps;
  const [command, address, ...extra] = args;
  if (command === 'list' && address === undefined) {
    for (const email of await users.adminEmails()) output.out(email);
    return 0;
  }
  if (command === 'security-log') return securityLogCommand(args.slice(1), deps);
  if (command === 'sign-out' || command === 'disconnect') return sessionsCommand(command, args.slice(1), deps);
  if ((command !== 'grant' && command !== 'revoke') || address === undefined || extra.length > 0) {
    output.err(adminUsage);
    return 2;
  }
  const email = emailArgument(address, output);
  if (email === undefined) return 2;
  const role = command === 'grant' ? 'admin' : 'user';
  const changed = await users.setRole(email, role);
  if (!changed) {
    output.err(`no account has the email ${email}; the user signs up first, then an operator grants`);
    return 1;
  }
  if (changed.previous === role) {
    output.err(command === 'grant' ? `${email} is already an admin` : `${email} is not an admin`);
    return 0;
  }
  const type = command === 'grant' ? 'admin_granted' : 'admin_revoked';
  securityLog(logger, type, { userId: changed.id, email: maskEmail(email), operator: operatorName() });
  await deps.security.insertEvents([
    { at: new Date(), userId: changed.id, email, type, ip: null, userAgent: null, device: null, network: null, details: { operator: operatorName() } },
  ]);
  output.err(command === 'grant' ? `${email} is an admin from their next sign-in or token refresh` : `${email} is no longer an admin; their /ops sockets close within 2 s`);
  return 0;
}

/**
 * `sign-out <email>`, `sign-out --all --yes` and `disconnect <email>`. A sign-out is a security log record of each
 * account whose sessions it revoked (`session_revoked`, by the operator); a disconnect changes no right, so only
 * the JSON log says who did it.
 */
async function sessionsCommand(
  command: 'sign-out' | 'disconnect',
  args: readonly string[],
  deps: Parameters<typeof runAdminCommand>[1],
): Promise<number> {
  const { output, logger } = deps;
  const operator = operatorName();
  if (command === 'sign-out' && args[0] === '--all') {
    const flags = args.slice(1);
    if (flags.some((flag) => flag !== '--yes')) {
      output.err(adminUsage);
      return 2;
    }
    if (!flags.includes('--yes')) {
      const open = await deps.sessions.openCount();
      output.err(`sign-out --all would revoke ${open.sessions} open sessions of ${open.users} accounts, make every access token issued until then invalid and close every socket of every node (admins' /ops included); run it again with --yes to do it`);
      return 2;
    }
    const sessions = await deps.operatorSessions();
    const revoked = await sessions.signOutEveryone();
    const byUser = new Map<string, { email: string; sessions: number }>();
    for (const { userId, email } of revoked) {
      const entry = byUser.get(userId) ?? { email, sessions: 0 };
      entry.sessions++;
      byUser.set(userId, entry);
    }
    securityLog(logger, 'admin_action', { action: 'sign_out_everyone', operator, users: byUser.size, sessions: revoked.length });
    const at = new Date();
    const events = [...byUser].map(([userId, entry]) => signedOutRecord(at, userId, entry.email, operator, entry.sessions));
    for (let i = 0; i < events.length; i += SECURITY_EVENT_BATCH) await deps.security.insertEvents(events.slice(i, i + SECURITY_EVENT_BATCH));
    output.err(`revoked ${revoked.length} sessions of ${byUser.size} accounts; every node was told to close every socket`);
    return 0;
  }
  const [address, ...extra] = args;
  if (address === undefined || address.startsWith('--') || extra.length > 0) {
    output.err(adminUsage);
    return 2;
  }
  const email = emailArgument(address, output);
  if (email === undefined) return 2;
  const userId = await deps.users.idByEmail(email);
  if (!userId) {
    output.err(`no account has the email ${email}`);
    return 1;
  }
  const sessions = await deps.operatorSessions();
  if (command === 'disconnect') {
    await sessions.disconnect(userId);
    securityLog(logger, 'admin_action', { action: 'disconnect_user', operator, userId, email: maskEmail(email) });
    output.err(`every node was told to close the sockets of ${email}; their sessions stay valid, so their tabs reconnect`);
    return 0;
  }
  const revoked = await sessions.signOut(userId);
  securityLog(logger, 'admin_action', { action: 'sign_out', operator, userId, email: maskEmail(email), sessions: revoked.length });
  await deps.security.insertEvents([signedOutRecord(new Date(), userId, email, operator, revoked.length)]);
  output.err(`revoked ${revoked.length} sessions of ${email}; every node was told to close their sockets`);
  return 0;
}

/** The security log record (AUTH-18) of an operator's sign-out of one account. */
function signedOutRecord(at: Date, userId: string, email: string, operator: string, sessions: number): NewSecurityEvent {
  return { at, userId, email, type: 'session_revoked', ip: null, userAgent: null, device: null, network: null, details: { by: 'operator', operator, sessions } };
}

/** `security-log [--email x] [--limit n]`: the operators read every entry (AUTH-18), one JSON object a line. */
async function securityLogCommand(args: readonly string[], deps: { security: Pick<SecurityRepository, 'operatorPage'>; output: CommandOutput }): Promise<number> {
  let email: string | undefined;
  let limit = 100;
  for (let i = 0; i < args.length; i += 2) {
    const [flag, value] = [args[i], args[i + 1]];
    if (flag === '--email' && value !== undefined) {
      email = emailArgument(value, deps.output);
      if (email === undefined) return 2;
    } else if (flag === '--limit' && value !== undefined && /^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 10_000) {
      limit = Number(value);
    } else {
      deps.output.err(adminUsage);
      return 2;
    }
  }
  for (const row of await deps.security.operatorPage(email, limit)) {
    deps.output.out(JSON.stringify({ at: row.at.toISOString(), type: row.type, email: row.email, userId: row.userId, ip: row.ip, device: row.device, userAgent: row.userAgent, details: row.details }));
  }
  return 0;
}

/** An email address given on the command line, normalised as at sign-up; undefined (said on stderr) when it is not one. */
function emailArgument(value: string, output: CommandOutput): string | undefined {
  const parsed = emailSchema.safeParse(value);
  if (!parsed.success) output.err(`not an email address: ${value}`);
  return parsed.data;
}

/** Who ran the command, as the operating system knows them (for the audit record). */
function operatorName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return 'unknown';
  }
}
