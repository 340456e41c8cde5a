/**
 * The operators' command line (PROTOCOL §3a): `npm run admin -- <command>` in a
 * checkout, `node dist/server/cli.js admin <command>` in a built deployment
 * (no dev tools needed); `backup` and `restore` likewise (`features/backup/backup.ts`).
 * It reads the server's configuration, so the same environment as the nodes',
 * and talks to PostgreSQL; `sign-out` and `disconnect` also to Redis, and
 * through it to every node (`features/auth/operator-sessions.ts`).
 */
import { pino } from 'pino';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { createPostgres } from './db/postgres.js';
import { createUsersRepository } from './features/auth/users.repository.js';
import { adminUsage, runAdminCommand, type CommandOutput } from './features/auth/admins.js';
import { backupUsage, runBackupCommand, runRestoreCommand } from './features/backup/backup.js';
import { createSecurityRepository } from './features/security/security.repository.js';
import { createSessionsRepository } from './features/auth/sessions.repository.js';
import { openOperatorSessions, type OperatorSessions } from './features/auth/operator-sessions.js';

async function main(argv: string[]): Promise<number> {
  const [group, ...args] = argv;
  if (group !== 'admin' && group !== 'backup' && group !== 'restore') {
    process.stderr.write(`${adminUsage}\n${backupUsage}\n`);
    return 2;
  }
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`Sam's command line cannot start. ${err.message}\n`);
      return 78;
    }
    throw err;
  }
  const output: CommandOutput = { out: (line) => process.stdout.write(`${line}\n`), err: (line) => process.stderr.write(`${line}\n`) };
  if (group === 'backup') return runBackupCommand(args, { databaseUrl: config.databaseUrl, output });
  if (group === 'restore') return runRestoreCommand(args, { databaseUrl: config.databaseUrl, output });
  // The security log goes to stderr, so that stdout holds only the command's result (`list`).
  const logger = createLogger({ level: config.logLevel, nodeId: `${config.nodeId}:cli`, destination: pino.destination({ dest: 2, sync: true }) });
  const sql = createPostgres(config.databaseUrl, { max: 1, applicationName: 'sam:cli' });
  const sessions = createSessionsRepository(sql);
  let operatorSessions: Promise<OperatorSessions> | undefined;
  try {
    return await runAdminCommand(args, {
      users: createUsersRepository(sql),
      security: createSecurityRepository(sql),
      sessions,
      operatorSessions: () => (operatorSessions ??= openOperatorSessions(config, { sessions, logger })),
      logger,
      output,
    });
  } finally {
    await operatorSessions?.then((opened) => opened.close()).catch(() => undefined);
    await sql.end({ timeout: 5 });
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`The command failed: ${(err as Error).message}\n`);
    process.exitCode = 1;
  },
);
