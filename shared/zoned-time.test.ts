import { describe, expect, it } from 'vitest';
import { shiftReminder, tomorrowAt, zonedInstant, zonedParts } from './zoned-time.js';

describe('zoned time', () => {
  it('turns a wall time into the instant of that zone', () => {
    expect(zonedInstant('2026-12-07', { hour: 9, minute: 0 }, 'Europe/Berlin').toISOString()).toBe('2026-12-07T08:00:00.000Z');
    expect(zonedInstant('2026-07-07', { hour: 9, minute: 0 }, 'Europe/Berlin').toISOString()).toBe('2026-07-07T07:00:00.000Z');
  });

  it('moves a wall time in a DST gap forward by the gap', () => {
    // 2026-03-08 02:30 does not exist in New York: the clocks jump from 02:00 to 03:00 EDT.
    expect(zonedInstant('2026-03-08', { hour: 2, minute: 30 }, 'America/New_York').toISOString()).toBe('2026-03-08T07:30:00.000Z');
  });

  it('takes the first of a wall time that occurs twice', () => {
    // 2026-11-01 01:30 happens in EDT (05:30Z) and again in EST (06:30Z).
    expect(zonedInstant('2026-11-01', { hour: 1, minute: 30 }, 'America/New_York').toISOString()).toBe('2026-11-01T05:30:00.000Z');
  });

  it('reads the calendar date and wall time of an instant', () => {
    expect(zonedParts(new Date('2026-12-06T23:30:00Z'), 'Asia/Tokyo')).toEqual({ date: '2026-12-07', time: { hour: 8, minute: 30, second: 0 } });
  });

  it('snoozes to tomorrow 9:00 in the user zone, across a DST change', () => {
    // The evening before Europe's clocks go back: tomorrow 9:00 is CET, an hour later in UTC than today's 9:00.
    expect(tomorrowAt(new Date('2026-10-24T20:00:00Z'), { hour: 9, minute: 0 }, 'Europe/Berlin').toISOString()).toBe('2026-10-25T08:00:00.000Z');
    // Late evening in Los Angeles is already the next day in UTC: "tomorrow" is the user's tomorrow.
    expect(tomorrowAt(new Date('2026-12-07T06:30:00Z'), { hour: 9, minute: 0 }, 'America/Los_Angeles').toISOString()).toBe('2026-12-07T17:00:00.000Z');
  });

  it('keeps the reminder offset of a recurring task on the wall clock (REM-6)', () => {
    // The day before the deadline at 17:00 Berlin time, in summer; the next occurrence falls after the clocks went back.
    const next = shiftReminder(new Date('2026-10-20T15:00:00Z'), '2026-10-21', '2026-10-28', 'Europe/Berlin');
    expect(next.toISOString()).toBe('2026-10-27T16:00:00.000Z');
    // Same day as the deadline.
    expect(shiftReminder(new Date('2026-12-07T08:00:00Z'), '2026-12-07', '2026-12-14', 'UTC').toISOString()).toBe('2026-12-14T08:00:00.000Z');
  });
});
