/**
 * Reminders through a PostgreSQL outage (issue 20, "Bad input and faults"):
 * the database is down while reminders fall due; once it is back, each fires
 * once, late, and none is lost. A PostgreSQL server of the test's own.
 */
import { describe, expect, it } from 'vitest';
import { productionEnv } from './support/env.js';
import { startTestApp } from './support/app.js';
import { signUp } from './support/users.js';
import { connectReady } from './support/sockets.js';
import { until } from './support/until.js';
import { migratedDatabase, startOwnPostgres } from './support/postgres-server.js';

describe('reminders and a PostgreSQL outage', () => {
  it('[REM-2] reminders due while PostgreSQL is down fire once each, late, when it is back; later ones on time', async () => {
    await using pg = await startOwnPostgres();
    const databaseUrl = await migratedDatabase(pg.url('sam'));
    await using app = await startTestApp(productionEnv({ DATABASE_URL: databaseUrl, SOCKET_EVENTS_PER_MINUTE: '10000' }));
    const user = await signUp(app.url);
    const tab = await connectReady(app.url, user.auth.accessToken);
    try {
      const soon = Date.now() + 2_000;
      const during = await Promise.all(
        Array.from({ length: 20 }, async (_, i) => (await tab.call('task:create', { title: `During ${i}`, remindAt: new Date(soon + i * 50).toISOString() })).task.id),
      );
      const after = (await tab.call('task:create', { title: 'After', remindAt: new Date(Date.now() + 16_000).toISOString() })).task.id;

      await pg.down();
      await new Promise((r) => setTimeout(r, 8_000)); // all 20 fall due meanwhile, and more than 5 s ago
      const firedDuringOutage = tab.received.filter((r) => r.event === 'reminder:due').length;
      await pg.up();

      const dues = () => tab.received.filter((r) => r.event === 'reminder:due');
      await until(async () => dues().length, (n) => n >= 21, 20_000, 'all 21 reminders');
      await new Promise((r) => setTimeout(r, 2_000));
      expect(firedDuringOutage).toBe(0);
      const got = dues().map((r) => r.data.reminder);
      expect(got).toHaveLength(21);
      expect(new Set(got.map((r) => r.taskId))).toEqual(new Set([...during, after]));
      for (const r of got.filter((r) => r.taskId !== after)) expect(r.late).toBe(true);
      const onTime = dues().find((r) => r.data.reminder.taskId === after)!;
      expect(onTime.data.reminder.late).toBe(false);
      expect(onTime.at - Date.parse(onTime.data.reminder.firesAt)).toBeLessThan(5_000);
      expect(app.logs.records().some((r) => r.job === 'reminders' && String(r.msg).includes('retrying'))).toBe(true);
    } finally {
      tab.close();
    }
  }, 60_000);
});
