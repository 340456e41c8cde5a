/**
 * The fault drill's short form (test/support/drill.ts, `npm run drill` for the full one): 20 users with 3 tabs
 * each on two production-mode node processes, their own PostgreSQL and Redis, every fault in turn.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { allFaults, Drill, formatTable, type FaultReport } from './support/drill.js';

const drill = new Drill({
  users: 20,
  tabsPerUser: 3,
  loadMs: 3_000,
  actionEveryMs: 1_500,
  revokePerFault: 1,
  slowStreams: 3,
  faults: allFaults,
  log: () => undefined,
});
const reports: FaultReport[] = [];

afterAll(async () => {
  if (reports.length > 0) process.stdout.write(`${formatTable(reports)}\n`);
  await drill.stop();
});

describe('fault drill', () => {
  it('starts two nodes on a PostgreSQL and a Redis of its own, with every tab live', async () => {
    await drill.start();
    expect(drill.tabs.every((t) => t.live)).toBe(true);
  }, 120_000);

  for (const fault of allFaults) {
    it(`[SYNC-1][SYNC-2][AUTH-7][CHAT-7] after ${fault}: nothing acknowledged lost or doubled, every tab equal to PostgreSQL, no 500, no foreign event, revoked tokens refused`, async () => {
      const report = await drill.fault(fault);
      reports.push(report);
      expect(report.problems).toEqual([]);
      expect(report.acknowledged).toBeGreaterThan(0);
      expect(report).toMatchObject({ lost: 0, duplicated: 0, internalErrors: 0, foreignEvents: 0, revokedAccepted: 0 });
      expect(report.convergedMs).not.toBeNull();
      if (fault === 'node-kill') expect(report.streams).toMatchObject({ expected: 'interrupted', wrong: 0 });
      if (fault === 'node-term') {
        expect(report.streams).toMatchObject({ expected: 'complete', wrong: 0 });
        // PROTOCOL §8: the drained node's clients are back on the other node within 5 s.
        expect(report.movedMs).toBeLessThan(5_000);
      }
    }, 150_000);
  }
});
