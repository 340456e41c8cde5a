/**
 * What this node last read or wrote of a user's tasks, so that the next change
 * of the same task can skip its read. It is never trusted on its own: a change
 * decided on it writes only while the user's seq is still the one cached (the
 * check every change makes), and a write that finds the seq moved on (a change
 * on another node, the purge job) drops the user's entry and reads again. So a
 * stale entry costs a round trip, never a wrong change.
 *
 * Bounded: the users least recently used go first, and a user keeps the few
 * tasks changed last.
 */
import type { TaskOwner, TaskRecord, TaskWrites } from './tasks.repository.js';

interface Entry {
  owner: TaskOwner;
  /** the user's tasks as they are at `owner.seq` */
  tasks: Map<string, TaskRecord>;
}

export class ChangeCache {
  private readonly users = new Map<string, Entry>();

  constructor(
    private readonly maxUsers = 20_000,
    private readonly maxTasksPerUser = 4,
  ) {}

  /** The owner and, when `taskId` is given, that task, if both are cached. */
  get(userId: string, taskId: string | undefined): { owner: TaskOwner; task: TaskRecord | undefined; cached: true } | undefined {
    const entry = this.users.get(userId);
    if (!entry) return undefined;
    const task = taskId === undefined ? undefined : entry.tasks.get(taskId);
    if (taskId !== undefined && !task) return undefined;
    this.touch(userId, entry);
    return { owner: entry.owner, task, cached: true };
  }

  /** Remembers what a read saw: the owner at its seq, and the task read with it. */
  remember(userId: string, owner: TaskOwner, task: TaskRecord | undefined): void {
    let entry = this.users.get(userId);
    if (!entry || entry.owner.seq !== owner.seq) entry = { owner, tasks: new Map() };
    if (task) this.put(entry, task);
    this.touch(userId, entry);
  }

  /** Records a write that applied: the user is now at `toSeq`, with these rows. */
  applied(userId: string, owner: TaskOwner, toSeq: number, writes: TaskWrites): void {
    const previous = this.users.get(userId);
    // Rows cached at the seq the change was decided on are still current; any other entry is not.
    const tasks = previous && previous.owner.seq === owner.seq ? previous.tasks : new Map<string, TaskRecord>();
    const entry: Entry = { owner: { ...owner, seq: toSeq }, tasks };
    for (const { id } of writes.purged) tasks.delete(id);
    for (const task of [...writes.inserted, ...writes.updated]) this.put(entry, task);
    this.touch(userId, entry);
  }

  forget(userId: string): void {
    this.users.delete(userId);
  }

  private put(entry: Entry, task: TaskRecord): void {
    entry.tasks.delete(task.id);
    entry.tasks.set(task.id, task);
    if (entry.tasks.size > this.maxTasksPerUser) entry.tasks.delete(entry.tasks.keys().next().value!);
  }

  private touch(userId: string, entry: Entry): void {
    this.users.delete(userId);
    this.users.set(userId, entry);
    if (this.users.size > this.maxUsers) this.users.delete(this.users.keys().next().value!);
  }
}
