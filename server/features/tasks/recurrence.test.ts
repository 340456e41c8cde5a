import { describe, expect, it } from 'vitest';
import { addDays, daysBetween, daysInMonth, nextDeadline } from './recurrence.js';

const monthly = (interval = 1, endDate: string | null = null) => ({ type: 'monthly' as const, interval, endDate });
const yearly = (interval = 1, endDate: string | null = null) => ({ type: 'yearly' as const, interval, endDate });

/** Follows a series from `first` for `count` occurrences, carrying the series' day as the service does. */
function series(first: string, rec: Parameters<typeof nextDeadline>[1], count: number): (string | null)[] {
  const seriesDay = Number(first.slice(8));
  const out: (string | null)[] = [first];
  let current: string | null = first;
  for (let i = 1; i < count && current; i++) {
    current = nextDeadline(current, rec, seriesDay);
    out.push(current);
  }
  return out;
}

describe('recurrence', () => {
  it('[TASK-3] daily adds interval days, across month and year ends', () => {
    expect(nextDeadline('2026-11-29', { type: 'daily', interval: 1, endDate: null })).toBe('2026-11-30');
    expect(nextDeadline('2026-12-31', { type: 'daily', interval: 1, endDate: null })).toBe('2027-01-01');
    expect(nextDeadline('2028-02-28', { type: 'daily', interval: 1, endDate: null })).toBe('2028-02-29');
    expect(nextDeadline('2026-01-30', { type: 'daily', interval: 3, endDate: null })).toBe('2026-02-02');
  });

  it('[TASK-3] weekly adds interval weeks', () => {
    expect(nextDeadline('2026-11-29', { type: 'weekly', interval: 1, endDate: null })).toBe('2026-12-06');
    expect(nextDeadline('2026-12-28', { type: 'weekly', interval: 2, endDate: null })).toBe('2027-01-11');
  });

  it('[TASK-3] monthly from 31 Jan goes to 28 Feb in 2027, then back to 31 Mar', () => {
    expect(series('2027-01-31', monthly(), 4)).toEqual(['2027-01-31', '2027-02-28', '2027-03-31', '2027-04-30']);
  });

  it('[TASK-3] monthly from 31 Jan goes to 29 Feb in the leap year 2028, then 31 Mar', () => {
    expect(series('2028-01-31', monthly(), 3)).toEqual(['2028-01-31', '2028-02-29', '2028-03-31']);
  });

  it('[TASK-3] without the series day, the day of the given deadline is kept', () => {
    expect(nextDeadline('2027-01-31', monthly())).toBe('2027-02-28');
    expect(nextDeadline('2027-02-28', monthly())).toBe('2027-03-28');
    expect(nextDeadline('2027-02-28', monthly(), 31)).toBe('2027-03-31');
  });

  it('[TASK-3] monthly with an interval crosses the year', () => {
    expect(nextDeadline('2026-11-30', monthly(3))).toBe('2027-02-28');
    expect(nextDeadline('2026-12-15', monthly(1))).toBe('2027-01-15');
    expect(nextDeadline('2026-12-15', monthly(12))).toBe('2027-12-15');
    expect(nextDeadline('2026-01-15', monthly(25))).toBe('2028-02-15');
  });

  it('[TASK-3] yearly from 29 Feb goes to 28 Feb, and back to 29 Feb in the next leap year', () => {
    expect(series('2028-02-29', yearly(), 6)).toEqual(['2028-02-29', '2029-02-28', '2030-02-28', '2031-02-28', '2032-02-29', '2033-02-28']);
    expect(nextDeadline('2026-07-04', yearly(2))).toBe('2028-07-04');
  });

  it('[TASK-3] no occurrence past endDate; one on endDate is kept', () => {
    expect(nextDeadline('2026-11-29', { type: 'daily', interval: 1, endDate: '2026-11-30' })).toBe('2026-11-30');
    expect(nextDeadline('2026-11-30', { type: 'daily', interval: 1, endDate: '2026-11-30' })).toBeNull();
    expect(nextDeadline('2027-01-31', monthly(1, '2027-02-27'))).toBeNull();
    expect(nextDeadline('2027-01-31', monthly(1, '2027-02-28'))).toBe('2027-02-28');
    expect(nextDeadline('2026-11-29', { type: 'weekly', interval: 1, endDate: '2026-11-20' })).toBeNull();
  });

  it('gives no occurrence beyond year 9999', () => {
    expect(nextDeadline('9999-06-01', yearly(1))).toBeNull();
    expect(nextDeadline('9999-12-31', { type: 'daily', interval: 1, endDate: null })).toBeNull();
  });

  it('counts calendar days and month lengths', () => {
    expect(daysInMonth(2027, 2)).toBe(28);
    expect(daysInMonth(2028, 2)).toBe(29);
    expect(daysInMonth(2100, 2)).toBe(28);
    expect(daysInMonth(2000, 2)).toBe(29);
    expect(daysBetween('2026-11-29', '2026-12-01')).toBe(2);
    expect(daysBetween('2026-12-01', '2026-11-29')).toBe(-2);
    expect(daysBetween('2026-03-28', '2026-03-30')).toBe(2);
    expect(addDays('0050-01-01', -1)).toBe('0049-12-31');
  });
});
