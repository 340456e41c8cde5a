/** The change cache alone: what it returns, and what it forgets. */
import { describe, expect, it } from 'vitest';
import { ChangeCache } from './change-cache.js';
import type { TaskOwner } from './tasks.repository.js';
import { taskRecord } from './task-record.fixture.js';

const owner = (seq: number): TaskOwner => ({ seq, tombstoneFloorSeq: 0, timezone: 'UTC' });
const task = (id: string, seq: number, title = id) => taskRecord({ id, userId: 'u', title, seq });
const none = { inserted: [], updated: [], purged: [] };

describe('ChangeCache', () => {
  it('returns a task only when it has it, and the owner alone when no task is asked', () => {
    const cache = new ChangeCache();
    expect(cache.get('u', 'a')).toBeUndefined();
    cache.remember('u', owner(3), task('a', 3));
    expect(cache.get('u', 'a')).toEqual({ owner: owner(3), task: task('a', 3), cached: true });
    expect(cache.get('u', 'b')).toBeUndefined();
    expect(cache.get('u', undefined)).toEqual({ owner: owner(3), task: undefined, cached: true });
  });

  it('a read at another seq replaces what was cached; one at the same seq adds to it', () => {
    const cache = new ChangeCache();
    cache.remember('u', owner(3), task('a', 3));
    cache.remember('u', owner(3), task('b', 2));
    expect(cache.get('u', 'a')).toBeDefined();
    cache.remember('u', owner(5), task('b', 5));
    expect(cache.get('u', 'a')).toBeUndefined();
    expect(cache.get('u', 'b')?.owner.seq).toBe(5);
  });

  it('an applied write moves the seq and keeps the rows that are still current; purged rows go', () => {
    const cache = new ChangeCache();
    cache.remember('u', owner(3), task('a', 3));
    cache.remember('u', owner(3), task('b', 1));
    cache.applied('u', owner(3), 5, { inserted: [task('c', 5)], updated: [task('a', 4, 'A')], purged: [{ id: 'b', seq: 6 }] });
    expect(cache.get('u', 'a')).toEqual({ owner: owner(5), task: task('a', 4, 'A'), cached: true });
    expect(cache.get('u', 'c')?.task?.seq).toBe(5);
    expect(cache.get('u', 'b')).toBeUndefined();
  });

  it('a write decided on another seq than the cached one keeps only its own rows', () => {
    const cache = new ChangeCache();
    cache.remember('u', owner(3), task('a', 3));
    cache.applied('u', owner(7), 8, { ...none, updated: [task('b', 8)] });
    expect(cache.get('u', 'a')).toBeUndefined();
    expect(cache.get('u', 'b')?.owner.seq).toBe(8);
  });

  it('forgets a user on demand, the least recently used user first, and a user’s oldest task first', () => {
    const cache = new ChangeCache(2, 2);
    cache.remember('u1', owner(1), task('a', 1));
    cache.remember('u2', owner(1), task('b', 1));
    cache.get('u1', 'a');
    cache.remember('u3', owner(1), task('c', 1));
    expect(cache.get('u2', 'b')).toBeUndefined();
    expect(cache.get('u1', 'a')).toBeDefined();
    cache.forget('u1');
    expect(cache.get('u1', 'a')).toBeUndefined();
    cache.remember('u3', owner(1), task('d', 1));
    cache.remember('u3', owner(1), task('e', 1));
    expect(cache.get('u3', 'c')).toBeUndefined();
    expect(cache.get('u3', 'e')).toBeDefined();
  });
});
