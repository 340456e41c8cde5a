/** A task as the wire shows it, for unit tests of the server and the client: a plain open task, with the fields given. */
import type { Task } from './tasks.js';

export function wireTask(fields: Partial<Task> = {}): Task {
  return {
    id: '00000000-0000-4000-8000-00000000000a',
    title: 'Write the report',
    description: 'Quarterly',
    deadline: null,
    intensity: 3,
    status: 'not_started',
    project: null,
    waitingOn: null,
    dependencies: [],
    recurrence: null,
    version: 1,
    seq: 5,
    createdAt: '2026-12-01T09:00:00.000Z',
    updatedAt: '2026-12-01T09:00:00.000Z',
    completedAt: null,
    deletedAt: null,
    remindAt: null,
    ...fields,
  };
}
