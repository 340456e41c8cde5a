/** A stored task for the unit tests of the rules and the cache: a plain open task, with the fields given. */
import type { TaskRecord } from './tasks.repository.js';

export function taskRecord(fields: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id: '00000000-0000-4000-8000-00000000000a',
    userId: '00000000-0000-4000-8000-000000000001',
    title: 'Write the report',
    description: 'Quarterly',
    deadline: null,
    intensity: 3,
    status: 'not_started',
    project: null,
    waitingOn: null,
    dependencies: [],
    recurrence: null,
    seriesDay: null,
    nextOccurrenceId: null,
    statusBeforeDelete: null,
    version: 1,
    seq: 5,
    createdAt: new Date('2026-12-01T09:00:00.000Z'),
    updatedAt: new Date('2026-12-01T09:00:00.000Z'),
    completedAt: null,
    deletedAt: null,
    remindAt: null,
    reminderId: null,
    ...fields,
  };
}
