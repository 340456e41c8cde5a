import { describe, expect, it } from 'vitest';
import { addDays, daysBetween, dueLabel } from './time';

describe('dueLabel', () => {
  const today = '2026-12-07';

  it('names the near days and reads as a sentence on its own', () => {
    expect(dueLabel(today, today)).toBe('Due today');
    expect(dueLabel('2026-12-08', today)).toBe('Due tomorrow');
    expect(dueLabel('2026-12-06', today)).toBe('Due yesterday');
  });

  it('says how late an older deadline is, without "Due" before it', () => {
    expect(dueLabel('2026-12-04', today)).toBe('3 days overdue');
    expect(dueLabel('2025-12-07', today)).toBe('365 days overdue');
  });

  it('gives a later deadline its date, with the year only when it is far off', () => {
    const near = dueLabel('2026-12-20', today);
    expect(near).toMatch(/^Due /);
    expect(near).toContain('20');
    expect(near).not.toContain('2026');
    expect(dueLabel('2027-12-20', today)).toContain('2027');
  });

  it('counts calendar days across a month and a year', () => {
    expect(daysBetween('2026-12-31', '2027-01-01')).toBe(1);
    expect(addDays('2026-02-28', 1)).toBe('2026-03-01');
    expect(dueLabel(addDays(today, 1), today)).toBe('Due tomorrow');
  });
});
