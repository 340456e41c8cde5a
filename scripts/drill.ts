/**
 * `npm run drill` (README "Fault drill"): the full fault drill, 300 users with 3 tabs each on two nodes, every
 * fault in turn; prints one row per fault and exits 0 only when every invariant held after every fault.
 * DRILL_USERS, DRILL_LOAD_MS, DRILL_ACTION_EVERY_MS (each tab's pace) and DRILL_FAULTS (comma-separated) change it.
 */
import os from 'node:os';
import { allFaults, formatTable, holds, runDrill, type FaultName } from '../test/support/drill.js';

const users = Number(process.env.DRILL_USERS ?? 300);
const faults = (process.env.DRILL_FAULTS?.split(',').map((f) => f.trim()) ?? allFaults) as FaultName[];
for (const f of faults) {
  if (!allFaults.includes(f)) {
    process.stderr.write(`unknown fault "${f}"; the faults are ${allFaults.join(', ')}\n`);
    process.exit(2);
  }
}
const started = Date.now();
const log = (line: string) => process.stdout.write(`[drill ${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);

try {
  const reports = await runDrill({
    users,
    tabsPerUser: 3,
    loadMs: Number(process.env.DRILL_LOAD_MS ?? 15_000),
    // About 2 actions a second per 100 tabs: the machine's other work goes on.
    actionEveryMs: Number(process.env.DRILL_ACTION_EVERY_MS ?? 50_000),
    revokePerFault: 2,
    slowStreams: 10,
    faults,
    log,
  });
  const ok = reports.length === faults.length && reports.every(holds);
  process.stdout.write(`\n${formatTable(reports)}\n\n`);
  process.stdout.write(`${users} users x 3 tabs, ${faults.length} faults, ${((Date.now() - started) / 1000).toFixed(0)} s; load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
  process.stdout.write(ok ? 'every invariant held after every fault\n' : 'INVARIANTS BROKEN: see the problems above\n');
  process.exit(ok ? 0 : 1);
} catch (err) {
  process.stderr.write(`the drill failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
}
