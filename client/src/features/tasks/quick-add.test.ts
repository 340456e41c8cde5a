import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseQuickAdd, quickAddMaxLength, type QuickAdd } from './quick-add';

const la = 'America/Los_Angeles';
const auckland = 'Pacific/Auckland';
/** Wednesday 2026-03-04 12:00 in Los Angeles (PST, UTC-8); Thursday 2026-03-05 09:00 in Auckland (NZDT, UTC+13). */
const wednesday = new Date('2026-03-04T20:00:00Z');

const parse = (text: string, timeZone = la, now = wednesday) => parseQuickAdd(text, { now, timeZone });
const kinds = (q: QuickAdd) => q.parts.map((p) => p.kind);
const label = (q: QuickAdd, kind: string) => q.parts.find((p) => p.kind === kind)?.label;

describe('parseQuickAdd', () => {
  const machineZone = process.env.TZ;
  afterEach(() => {
    if (machineZone === undefined) delete process.env.TZ;
    else process.env.TZ = machineZone;
  });

  it('reads the example: title, Friday, 17:00 in the user zone, #family, !4, every week', () => {
    const q = parse('call mom fri 5pm #family !4 every week');
    expect(q).toEqual({
      title: 'call mom',
      deadline: '2026-03-06',
      remindAt: '2026-03-07T01:00:00.000Z', // Friday 17:00 PST
      project: 'family',
      intensity: 4,
      recurrence: { type: 'weekly', interval: 1, endDate: null },
      parts: [
        { kind: 'title', label: 'call mom', source: 'call mom' },
        { kind: 'deadline', label: 'Friday, Mar 6', source: 'fri 5pm' },
        { kind: 'time', label: '17:00', source: 'fri 5pm' },
        { kind: 'project', label: '#family', source: '#family' },
        { kind: 'intensity', label: 'intensity 4', source: '!4' },
        { kind: 'recurrence', label: 'every week', source: 'every week' },
      ],
    });
  });

  it('reads the example on the wall clock of a zone far from the machine: Auckland', () => {
    const q = parse('call mom fri 5pm #family !4 every week', auckland);
    expect(q.deadline).toBe('2026-03-06');
    expect(q.remindAt).toBe('2026-03-06T04:00:00.000Z'); // Friday 17:00 NZDT (UTC+13)
    expect(label(q, 'time')).toBe('17:00');
  });

  it('gives the same answer whatever the machine zone is', () => {
    const answers = new Set<string>();
    for (const machine of ['UTC', 'Asia/Kolkata', 'Europe/Paris', 'America/Sao_Paulo', auckland, la]) {
      process.env.TZ = machine;
      for (const zone of [la, auckland]) answers.add(`${zone} ${JSON.stringify(parse('call mom fri 5pm #family !4 every week', zone))}`);
    }
    expect(answers.size).toBe(2);
  });

  it('keeps the written time across a DST change: Los Angeles springs forward on Sunday 2026-03-08', () => {
    const sunday = parse('call mom sun 5pm every week');
    expect(sunday.deadline).toBe('2026-03-08');
    expect(sunday.remindAt).toBe('2026-03-09T00:00:00.000Z'); // 17:00 PDT (UTC-7), not 18:00
    // 02:30 does not exist that night: it moves forward by the gap
    expect(parse('feed cat sun 2:30am').remindAt).toBe('2026-03-08T10:30:00.000Z');
    // a time of the week before the change keeps the old offset
    expect(parse('call mom sat 5pm').remindAt).toBe('2026-03-08T01:00:00.000Z');
  });

  it('keeps the written time across a DST change: Auckland falls back on Sunday 2026-04-05', () => {
    const thursday = new Date('2026-04-01T20:00:00Z'); // Thursday 2026-04-02 09:00 NZDT
    const q = parse('call mom sun 5pm', auckland, thursday);
    expect(q.deadline).toBe('2026-04-05');
    expect(q.remindAt).toBe('2026-04-05T05:00:00.000Z'); // 17:00 NZST (UTC+12), not 16:00
    expect(parse('standup mon 9am', auckland, thursday).remindAt).toBe('2026-04-05T21:00:00.000Z');
  });

  it('takes "fri 5pm" typed on a Friday evening as next Friday, and "fri" alone as today', () => {
    const fridayEvening = new Date('2026-03-07T03:00:00Z'); // Friday 19:00 PST
    const q = parse('call mom fri 5pm', la, fridayEvening);
    expect(q.deadline).toBe('2026-03-13');
    expect(q.remindAt).toBe('2026-03-14T00:00:00.000Z'); // 17:00 PDT
    expect(parse('call mom fri', la, fridayEvening)).toMatchObject({ deadline: '2026-03-06', remindAt: null });
  });

  it('reads a project alone', () => {
    expect(parse('buy milk #groceries')).toMatchObject({ title: 'buy milk', project: 'groceries', deadline: null, intensity: null, recurrence: null });
  });

  it('reads an intensity alone', () => {
    const q = parse('clean the garage !5');
    expect(q).toMatchObject({ title: 'clean the garage', intensity: 5, project: null, deadline: null });
    expect(kinds(q)).toEqual(['title', 'intensity']);
  });

  it('reads a date alone, with no reminder when no time of day was given', () => {
    const q = parse('dentist tomorrow');
    expect(q).toMatchObject({ title: 'dentist', deadline: '2026-03-05', remindAt: null });
    expect(kinds(q)).toEqual(['title', 'deadline']);
    expect(parse('call mom by friday').title).toBe('call mom');
  });

  it('reads a time alone as today, or tomorrow once it has passed', () => {
    expect(parse('meet at 17:30')).toMatchObject({ title: 'meet', deadline: '2026-03-04', remindAt: '2026-03-05T01:30:00.000Z' });
    expect(parse('meet at 9am')).toMatchObject({ deadline: '2026-03-05', remindAt: '2026-03-05T17:00:00.000Z' });
  });

  it('reads durations and explicit zones as instants', () => {
    expect(parse('stretch in 3 hours')).toMatchObject({ title: 'stretch', remindAt: '2026-03-04T23:00:00.000Z', deadline: '2026-03-04' });
    expect(parse('call bob 5pm EST')).toMatchObject({ title: 'call bob', remindAt: '2026-03-04T22:00:00.000Z', deadline: '2026-03-04' });
  });

  it.each([
    ['water plants every 2 days', 'water plants', { type: 'daily', interval: 2 }],
    ['water plants every day', 'water plants', { type: 'daily', interval: 1 }],
    ['gym daily', 'gym', { type: 'daily', interval: 1 }],
    ['review weekly', 'review', { type: 'weekly', interval: 1 }],
    ['sync every other week', 'sync', { type: 'weekly', interval: 2 }],
    ['pay rent monthly', 'pay rent', { type: 'monthly', interval: 1 }],
    ['pay rent every month', 'pay rent', { type: 'monthly', interval: 1 }],
    ['taxes yearly', 'taxes', { type: 'yearly', interval: 1 }],
    ['renew passport every 10 years', 'renew passport', { type: 'yearly', interval: 10 }],
  ])('reads the recurrence in %j, and no date from it', (text, title, recurrence) => {
    expect(parse(text)).toMatchObject({ title, recurrence: { ...recurrence, endDate: null }, deadline: null, remindAt: null });
  });

  it('reads "every monday" as weekly, due the coming Monday', () => {
    const q = parse('team sync every monday 10am');
    expect(q).toMatchObject({ title: 'team sync', deadline: '2026-03-09', remindAt: '2026-03-09T17:00:00.000Z', recurrence: { type: 'weekly', interval: 1 } });
    expect(label(q, 'recurrence')).toBe('every week');
  });

  it('understands nothing in text without a date or a tag', () => {
    for (const text of ['write report', 'still live', 'before the restart', 'read 1984 again', 'fix bug #123', 'call 911']) {
      const q = parse(text);
      expect(q).toEqual({ title: text, deadline: null, remindAt: null, project: null, intensity: null, recurrence: null, parts: [{ kind: 'title', label: text, source: text }] });
    }
  });

  it('keeps the original text as the title when nothing would be left of it', () => {
    expect(parse('tomorrow 5pm')).toMatchObject({ title: 'tomorrow 5pm', deadline: '2026-03-05', remindAt: '2026-03-06T01:00:00.000Z' });
    expect(parse('  #family  ')).toMatchObject({ title: '#family', project: 'family' });
    expect(parse('   ')).toMatchObject({ title: '', parts: [] });
  });

  it('leaves hostile or unknown tokens in the title: # alone, !9, !0, a tag glued to a word', () => {
    expect(parse('#')).toMatchObject({ title: '#', project: null });
    expect(parse('call # mom')).toMatchObject({ title: 'call # mom', project: null });
    expect(parse('lift !9')).toMatchObject({ title: 'lift !9', intensity: null });
    expect(parse('lift !0 !45')).toMatchObject({ title: 'lift !0 !45', intensity: null });
    expect(parse('wow!4 mom#family')).toMatchObject({ title: 'wow!4 mom#family', intensity: null, project: null });
    expect(parse('skip every 5000 days').recurrence).toBeNull();
    expect(parse('<img src=x onerror=alert(1)>').title).toBe('<img src=x onerror=alert(1)>');
    expect(parse('#daily standup')).toMatchObject({ project: 'daily', recurrence: null, title: 'standup' });
  });

  it('sets no reminder beyond five years ahead (REM-7), and survives an unknown zone', () => {
    expect(parse('call mom in 10 years at 5pm')).toMatchObject({ title: 'call mom', deadline: '2036-03-04', remindAt: null });
    expect(() => parse('call mom fri 5pm', 'Not/AZone')).not.toThrow();
    expect(parse('call mom fri 5pm', 'Not/AZone').deadline).toMatch(/^2026-03-0[5-7]$/);
  });

  it('takes text over the parsing cap as a plain title, and parses text under it', () => {
    const long = 'call mom fri 5pm #family !4 every week '.repeat(100);
    const q = parse(long);
    expect(q).toMatchObject({ title: long.trim(), deadline: null, project: null, intensity: null, recurrence: null });
    expect(long.length).toBeGreaterThan(quickAddMaxLength);
    const fits = 'x'.repeat(quickAddMaxLength - 20) + ' fri 5pm';
    expect(parse(fits)).toMatchObject({ title: 'x'.repeat(quickAddMaxLength - 20), deadline: '2026-03-06' });
  });

  it('never throws and always returns a well-formed result', () => {
    const token = fc.constantFrom('fri', '5pm', '#family', '!4', '!9', '#', 'every', 'week', 'every 2 days', 'tomorrow', 'at', '17:30', 'daily', 'monday', '0', '31', 'dec', '\u0000', 'ünï', ' ');
    const text = fc.oneof(fc.string({ maxLength: 200 }), fc.array(token, { maxLength: 12 }).map((t) => t.join(' ')));
    fc.assert(
      fc.property(text, fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2090, 0, 1) }), fc.constantFrom(la, auckland, 'UTC', 'Asia/Kathmandu'), (t, now, zone) => {
        const q = parseQuickAdd(t, { now: new Date(now), timeZone: zone });
        if (t.trim() !== '') expect(q.title.length).toBeGreaterThan(0);
        expect(q.title.length).toBeLessThanOrEqual(t.length);
        if (q.deadline !== null) expect(q.deadline).toMatch(/^\d{4}-\d{2}-\d{2}$/);
        if (q.remindAt !== null) expect(Number.isNaN(Date.parse(q.remindAt))).toBe(false);
        if (q.intensity !== null) expect([1, 2, 3, 4, 5]).toContain(q.intensity);
        if (q.recurrence !== null) expect(q.recurrence.interval).toBeGreaterThanOrEqual(1);
      }),
      { numRuns: 300 },
    );
  });
});
