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
import type { SecurityRepository } from '../security/security.repository.js';

export const adminUsage = [
  'usage: npm run admin -- <command>   (in a deployment: node dist/server/cli.js admin <command>)',
  '  grant <email>    give the existing account the admin role (from its next token)',
  '  revoke <email>   take it back (its /ops sockets close within 2 s)',
  '  list             the admins, one email a line',
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
  deps: { users: UsersRepository; security: Pick<SecurityRepository, 'insertEvents' | 'operatorPage'>; logger: Logger; output: CommandOutput },
): Promise<number> {
  const { users, logger, output } = deps;
  const [command, address, ...extra] = args;
  if (command === 'list' && address === undefined) {
    for (const email of await users.adminEmails()) output.out(email);
    return 0;
  }
  if (command === 'security-log') return securityLogCommand(args.slice(1), deps);
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
  const type = command === 'grant' ? 'admin_granted' : 'admin_revoked';
  securityLog(logger, type, { userId: changed.id, email: maskEmail(email), operator: operatorName() });
  await deps.security.insertEvents([
    { at: new Date(), userId: changed.id, email, type, ip: null, userAgent: null, device: null, network: null, details: { operator: operatorName() } },
  ]);
  output.err(command === 'grant' ? `${email} is an admin from their next sign-in or token refresh` : `${email} is no longer an admin; their /ops sockets close within 2 s`);
  return 0;
}

/** `security-log [--email x] [--limit n]`: the operators read every entry (AUTH-18), one JSON object a line. */
async function securityLogCommand(args: readonly string[], deps: { security: Pick<SecurityRepository, 'operatorPage'>; output: CommandOutput }): Promise<number> {
  let email: string | undefined;
  let limit = 100;
  for (let i = 0; i < args.length; i += 2) {
    const [flag, value] = [args[i], args[i + 1]];
    if (flag === '--email' && value !== undefined) {
      const parsed = emailSchema.safeParse(value);
      if (!parsed.success) {
        deps.output.err(`not an email address: ${value}`);
        return 2;
      }
      email = parsed.data;
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

/** Who ran the command, as the operating system knows them (for the audit record). */
function operatorName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return 'unknown';
  }
}
