/**
 * The operators' grants of the admin role (PROTOCOL §3a): `grant <email>`,
 * `revoke <email>` and `list`, run by the command line (`server/cli.ts`), never
 * by signing up. A grant takes effect at the account's next token (a refresh
 * or a login); a revoke at once for `/ops`: every node re-reads the role of its
 * `/ops` sockets each second and closes those that lost it (`role_changed`).
 * Every grant and revoke is a security log record.
 */
import os from 'node:os';
import { email as emailSchema } from '../../../shared/schemas/auth.js';
import { maskEmail, securityLog, type Logger } from '../../logger.js';
import type { UsersRepository } from './users.repository.js';

export const adminUsage = [
  'usage: npm run admin -- <command>   (in a deployment: node dist/server/cli.js admin <command>)',
  '  grant <email>    give the existing account the admin role (from its next token)',
  '  revoke <email>   take it back (its /ops sockets close within 2 s)',
  '  list             the admins, one email a line',
].join('\n');

export interface CommandOutput {
  /** the command's result (stdout) */
  out(line: string): void;
  /** messages for the operator (stderr) */
  err(line: string): void;
}

/** Runs `admin <args>`; resolves the exit code: 0 done, 1 no such account, 2 a usage error. */
export async function runAdminCommand(args: readonly string[], deps: { users: UsersRepository; logger: Logger; output: CommandOutput }): Promise<number> {
  const { users, logger, output } = deps;
  const [command, address, ...extra] = args;
  if (command === 'list' && address === undefined) {
    for (const email of await users.adminEmails()) output.out(email);
    return 0;
  }
  if ((command !== 'grant' && command !== 'revoke') || address === undefined || extra.length > 0) {
    output.err(adminUsage);
    return 2;
  }
  const parsed = emailSchema.safeParse(address);
  if (!parsed.success) {
    output.err(`not an email address: ${address}`);
    return 2;
  }
  const email = parsed.data;
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
  securityLog(logger, command === 'grant' ? 'admin_granted' : 'admin_revoked', { userId: changed.id, email: maskEmail(email), operator: operatorName() });
  output.err(command === 'grant' ? `${email} is an admin from their next sign-in or token refresh` : `${email} is no longer an admin; their /ops sockets close within 2 s`);
  return 0;
}

/** Who ran the command, as the operating system knows them (for the audit record). */
function operatorName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return 'unknown';
  }
}
