/**
 * PostgreSQL's own client programs (`pg_dump`, `pg_restore`), found and run
 * for a given server. A dump is read back only by a `pg_restore` at least as
 * new as the `pg_dump` that wrote it, and `pg_dump` refuses a server newer
 * than itself; so the programs of the server's own major version are
 * preferred (Debian installs each version under /usr/lib/postgresql/<major>/bin),
 * then newer ones, then whatever is on PATH.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';

export type PgTool = 'pg_dump' | 'pg_restore';

export interface FoundTool {
  path: string;
  /** e.g. `15.20` */
  version: string;
  major: number;
}

const VERSIONED_DIR = '/usr/lib/postgresql';

/** The program `name` whose major version is at least `minMajor`, the closest to it first; throws with what to install. */
export async function findPgTool(name: PgTool, minMajor: number): Promise<FoundTool> {
  const installed = fs.existsSync(VERSIONED_DIR)
    ? fs
        .readdirSync(VERSIONED_DIR)
        .filter((d) => /^\d+$/.test(d) && Number(d) >= minMajor)
        .sort((x, y) => Number(x) - Number(y))
        .map((d) => `${VERSIONED_DIR}/${d}/bin/${name}`)
        .filter((p) => fs.existsSync(p))
    : [];
  let tooOld: FoundTool | undefined;
  for (const candidate of [...installed, name]) {
    const found = await toolVersion(candidate);
    if (!found) continue;
    if (found.major >= minMajor) return found;
    tooOld ??= found;
  }
  const install = `install the PostgreSQL ${minMajor} client programs (Debian: postgresql-client-${minMajor}) or put a ${name} of version ${minMajor} or newer on PATH`;
  if (tooOld) throw new Error(`${name} ${tooOld.version} (${tooOld.path}) is older than PostgreSQL ${minMajor}: ${install}`);
  throw new Error(`${name} is not installed (not on PATH, not in ${VERSIONED_DIR}/<version>/bin): ${install}`);
}

/** `<program> --version`, parsed; undefined when the program cannot be run. */
async function toolVersion(program: string): Promise<FoundTool | undefined> {
  const result = await run(program, ['--version']).catch(() => undefined);
  const match = result?.code === 0 ? /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(result.stdout) : null;
  if (!match) return undefined;
  return { path: program, version: match[2] === undefined ? match[1]! : `${match[1]}.${match[2]}`, major: Number(match[1]) };
}

/**
 * The connection of `databaseUrl` for a libpq program. A password would show in the process list as part of
 * the URL, so it goes to a password file of the run's own (mode 0600, `passfile` in the URL), removed by
 * `dispose`.
 */
export function libpqConnection(databaseUrl: string): { dbname: string; dispose(): void } {
  const url = new URL(databaseUrl);
  const password = decodeURIComponent(url.password);
  if (!password) return { dbname: url.toString(), dispose: () => undefined };
  url.password = '';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sam-pgpass-'));
  const file = path.join(dir, 'pgpass');
  // The password file's format: host:port:database:user:password, `\` and `:` escaped.
  fs.writeFileSync(file, `*:*:*:*:${password.replace(/[\\:]/g, (c) => `\\${c}`)}\n`, { mode: 0o600 });
  url.searchParams.set('passfile', file);
  return { dbname: url.toString(), dispose: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Runs a tool to its end; resolves its exit code and output, rejects only when it cannot be started. */
export function run(program: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A tool's failure in one line: its first error line, else its last line. */
export function failureLine(tool: string, result: { code: number | null; stderr: string }): string {
  const lines = result.stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const line = lines.find((l) => /error|fatal/i.test(l)) ?? lines.at(-1) ?? 'no message';
  return `${tool} exited with ${result.code ?? 'a signal'}: ${line}`;
}
