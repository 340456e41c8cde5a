import { describe, expect, it } from 'vitest';
import { calendarDateIn, deadlinePoints, pickNextTask, scoreTask, type ScoredTask } from './next-task.js';

let counter = 0;
function task(over: Partial<ScoredTask> = {}): ScoredTask {
  counter += 1;
  return {
    id: `00000000-0000-4000-8000-${String(counter).padStart(12, '0')}`,
    deadline: null,
    intensity: 3,
    status: 'not_started',
    dependencies: [],
    createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, counter)).toISOString(),
    ...over,
  };
}

// 2026-11-29 11:30 UTC is 2026-11-30 00:30 in Auckland (NZDT, UTC+13).
const aucklandJustAfterMidnight = new Date('2026-11-29T11:30:00Z');
// 2026-11-30 07:30 UTC is 2026-11-29 23:30 in Los Angeles (PST, UTC-8).
const losAngelesJustBeforeMidnight = new Date('2026-11-30T07:30:00Z');

describe('calendarDateIn', () => {
  it('gives the date in the user time zone, not UTC', () => {
    expect(calendarDateIn('Pacific/Auckland', aucklandJustAfterMidnight)).toBe('2026-11-30');
    expect(calendarDateIn('UTC', aucklandJustAfterMidnight)).toBe('2026-11-29');
    expect(calendarDateIn('America/Los_Angeles', losAngelesJustBeforeMidnight)).toBe('2026-11-29');
    expect(calendarDateIn('UTC', losAngelesJustBeforeMidnight)).toBe('2026-11-30');
  });
});

describe('[TASK-5] deadline points', () => {
  const bands: [string | null, number][] = [
    ['2026-11-01', 100],
    ['2026-11-29', 100], // yesterday in Auckland though "today" in UTC
    ['2026-11-30', 90],
    ['2026-12-01', 80],
    ['2026-12-02', 70],
    ['2026-12-03', 70],
    ['2026-12-04', 50],
    ['2026-12-07', 50],
    ['2026-12-08', 30],
    ['2026-12-14', 30],
    ['2026-12-15', 10],
    ['2027-06-01', 10],
    [null, 0],
  ];
  for (const [deadline, points] of bands) {
    it(`[TASK-5] in Pacific/Auckland just after midnight, deadline ${deadline} scores ${points}`, () => {
      const today = calendarDateIn('Pacific/Auckland', aucklandJustAfterMidnight);
      expect(deadlinePoints(deadline, today)).toBe(points);
      const picked = pickNextTask([task({ deadline, intensity: 1 })], { now: aucklandJustAfterMidnight, timeZone: 'Pacific/Auckland' });
      expect(picked?.score).toBe(points + 5);
    });
  }

  it('[TASK-5] in America/Los_Angeles just before midnight, today is still the 29th', () => {
    const opts = { now: losAngelesJustBeforeMidnight, timeZone: 'America/Los_Angeles' };
    expect(pickNextTask([task({ deadline: '2026-11-29', intensity: 1 })], opts)?.score).toBe(95);
    expect(pickNextTask([task({ deadline: '2026-11-30', intensity: 1 })], opts)?.score).toBe(85);
    expect(pickNextTask([task({ deadline: '2026-11-28', intensity: 1 })], opts)?.score).toBe(105);
  });

  it('[TASK-5] score adds 5 × intensity and 15 when in progress', () => {
    expect(scoreTask({ deadline: null, intensity: 5, status: 'not_started' }, '2026-11-30')).toBe(25);
    expect(scoreTask({ deadline: null, intensity: 2, status: 'in_progress' }, '2026-11-30')).toBe(25);
    expect(scoreTask({ deadline: '2026-11-30', intensity: 4, status: 'in_progress' }, '2026-11-30')).toBe(125);
  });
});

describe('[TASK-5] pickNextTask', () => {
  const opts = { now: aucklandJustAfterMidnight, timeZone: 'Pacific/Auckland' };

  it('[TASK-5] picks the highest score', () => {
    const a = task({ deadline: '2026-12-10', intensity: 5 }); // 30 + 25 = 55
    const b = task({ deadline: '2026-12-01', intensity: 1 }); // 80 + 5 = 85
    const c = task({ deadline: null, intensity: 3, status: 'in_progress' }); // 0 + 15 + 15 = 30
    expect(pickNextTask([a, b, c], opts)).toEqual({ task: b, score: 85 });
  });

  it('[TASK-5] leaves out completed, waiting and deleted tasks', () => {
    const open = task({ deadline: null, intensity: 1 });
    const others = (['completed', 'waiting_on', 'deleted'] as const).map((status) => task({ status, deadline: '2026-11-01', intensity: 5 }));
    expect(pickNextTask([...others, open], opts)?.task).toBe(open);
    expect(pickNextTask(others, opts)).toBeNull();
    expect(pickNextTask([], opts)).toBeNull();
  });

  it('[TASK-5] ties go to the earlier deadline, no deadline last', () => {
    const later = task({ deadline: '2026-12-03', intensity: 3 }); // 70 + 15 = 85
    const earlier = task({ deadline: '2026-12-02', intensity: 3 }); // 70 + 15 = 85
    expect(pickNextTask([later, earlier], opts)?.task).toBe(earlier);
    // 0 + 25 + 15 = 40, and the older task, against 10 + 15 + 15 = 40
    const undated = task({ deadline: null, intensity: 5, status: 'in_progress', createdAt: '2025-01-01T00:00:00.000Z' });
    const dated = task({ deadline: '2027-06-01', intensity: 3, status: 'in_progress' });
    expect(pickNextTask([undated, dated], opts)).toEqual({ task: dated, score: 40 });
    expect(pickNextTask([dated, undated], opts)).toEqual({ task: dated, score: 40 });
  });

  it('[TASK-5] then the older task wins', () => {
    const newer = task({ deadline: '2026-12-02', createdAt: '2026-11-02T00:00:00.000Z' });
    const older = task({ deadline: '2026-12-02', createdAt: '2026-11-01T00:00:00.000Z' });
    expect(pickNextTask([newer, older], opts)?.task).toBe(older);
    expect(pickNextTask([older, newer], opts)?.task).toBe(older);
  });

  it('[TASK-5] intensity filter: light ≤ 2, medium = 3, heavy ≥ 4', () => {
    const tasks = [1, 2, 3, 4, 5].map((intensity) => task({ intensity }));
    const ids = (cls: 'light' | 'medium' | 'heavy') => {
      const remaining = [...tasks];
      const picked: number[] = [];
      for (;;) {
        const p = pickNextTask(remaining, { ...opts, intensity: cls });
        if (!p) return picked.sort();
        picked.push(p.task.intensity);
        remaining.splice(remaining.indexOf(p.task), 1);
      }
    };
    expect(ids('light')).toEqual([1, 2]);
    expect(ids('medium')).toEqual([3]);
    expect(ids('heavy')).toEqual([4, 5]);
    expect(pickNextTask(tasks, opts)?.task.intensity).toBe(5);
    expect(pickNextTask([task({ intensity: 3 })], { ...opts, intensity: 'heavy' })).toBeNull();
  });

  it('[TASK-5] a task with an unfinished dependency is not a candidate', () => {
    const dep = task({ status: 'in_progress', intensity: 1 });
    const blocked = task({ deadline: '2026-11-01', intensity: 5, dependencies: [dep.id] });
    expect(pickNextTask([dep, blocked], opts)?.task).toBe(dep);
    const waitingDep = task({ status: 'waiting_on' });
    const blocked2 = task({ dependencies: [waitingDep.id] });
    expect(pickNextTask([waitingDep, blocked2], opts)).toBeNull();
  });

  it('[TASK-5] completed and purged dependencies do not block', () => {
    const done = task({ status: 'completed' });
    const purgedId = '00000000-0000-4000-8000-ffffffffffff';
    const ready = task({ deadline: '2026-11-30', dependencies: [done.id, purgedId] });
    expect(pickNextTask([done, ready], opts)).toEqual({ task: ready, score: 105 });
  });

  it('[TASK-5] a dependency in the trash still blocks', () => {
    const trashed = task({ status: 'deleted' });
    const blocked = task({ dependencies: [trashed.id] });
    expect(pickNextTask([trashed, blocked], opts)).toBeNull();
  });
});
