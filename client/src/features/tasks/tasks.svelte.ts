/**
 * The user's tasks, kept as one local copy of all of them and converged with
 * the server by `seq` (SYNC-1): pushes are applied in order, a gap or a
 * reconnect asks `task:sync { since }`, and `reset: true` replaces the copy.
 * Views and counts are computed here from the copy, following PROTOCOL §6.1.
 */
import type { WireError } from '$shared/errors';
import type { IntensityClass, Task, TaskCreate, TaskListView, TaskPatch, TaskSyncResult } from '$shared/schemas/tasks';
import type { Connection } from '../../lib/connection.svelte';
import type { Toasts } from '../../lib/toasts.svelte';
import { describeError } from '../../lib/errors';
import { addDays, calendarDateIn, newId } from '../../lib/time';

export const viewLabels: Record<TaskListView, string> = {
  active: 'Active',
  upcoming: 'Upcoming',
  waiting: 'Waiting',
  completed: 'Completed',
  deleted: 'Trash',
};

/** An edit refused with CONFLICT (TASK-2): what this tab tried, and the task as it now is. */
export interface TaskConflict {
  patch: TaskPatch;
  theirs: Task;
}

const highlightMs = 2_000;
const upcomingDays = 7;

const byCreatedDesc = (a: Task, b: Task) => b.createdAt.localeCompare(a.createdAt);
const byDeadline = (a: Task, b: Task) => {
  if (a.deadline !== b.deadline) {
    if (a.deadline === null) return 1;
    if (b.deadline === null) return -1;
    return a.deadline.localeCompare(b.deadline);
  }
  return byCreatedDesc(a, b);
};

export interface TasksDeps {
  connection: Connection;
  toasts: Toasts;
  /** the user's IANA time zone, for "today" */
  timeZone: () => string;
  /** true while the assistant may be changing tasks (a generation is running) */
  assistantActive: () => boolean;
}

const SYNC_RETRY_FIRST_MS = 1_000;
const SYNC_RETRY_MAX_MS = 15_000;

export class TasksStore {
  #byId = $state.raw(new Map<string, Task>());
  #seq = $state<number | null>(null);
  #loaded = $state(false);
  #view = $state<TaskListView>('active');
  #project = $state<string | null>(null);
  #highlighted = $state.raw(new Set<string>());
  #conflict = $state.raw<TaskConflict | null>(null);
  #today = $state('');

  /** ids purged, with the seq of the removal, so an older snapshot cannot bring them back */
  #tombstones = new Map<string, number>();
  #highestSeen = 0;
  /** tasks this tab is changing right now: their pushes are the user's doing, not the assistant's */
  #mine = new Map<string, number>();
  #syncing: Promise<void> | null = null;
  #resync = false;
  /** ids pushed or answered while a sync request was out: newer than its snapshot, unlike the rest of the copy */
  #touchedDuringSync = new Set<string>();
  #syncRetry: ReturnType<typeof setTimeout> | null = null;
  #syncRetryMs = SYNC_RETRY_FIRST_MS;

  #all = $derived([...this.#byId.values()]);
  #inProject = $derived(this.#project === null ? this.#all : this.#all.filter((t) => t.project === this.#project));
  #views = $derived(this.#computeViews(this.#inProject));
  #projects = $derived([...new Set(this.#all.filter((t) => t.status !== 'deleted' && t.project).map((t) => t.project as string))].sort());

  constructor(private readonly deps: TasksDeps) {
    const c = deps.connection;
    c.on('task:changed', ({ seq, task }) => this.#pushed(seq, () => this.#upsert(task, 'push')));
    c.on('task:removed', ({ seq, id }) => this.#pushed(seq, () => this.#remove(id, seq)));
    c.onReady((ready) => void this.#sync(ready.taskSeq));
    this.#today = calendarDateIn(deps.timeZone());
    setInterval(() => (this.#today = calendarDateIn(this.deps.timeZone())), 60_000);
  }

  get loaded(): boolean {
    return this.#loaded;
  }
  get seq(): number | null {
    return this.#seq;
  }
  get view(): TaskListView {
    return this.#view;
  }
  set view(view: TaskListView) {
    this.#view = view;
  }
  get project(): string | null {
    return this.#project;
  }
  set project(project: string | null) {
    this.#project = project;
  }
  get projects(): string[] {
    return this.#projects;
  }
  get today(): string {
    return this.#today;
  }
  get conflict(): TaskConflict | null {
    return this.#conflict;
  }
  /** The tasks of the current view and project. */
  get visible(): Task[] {
    return this.#views[this.#view];
  }
  get counts(): Record<TaskListView, number> {
    const v = this.#views;
    return { active: v.active.length, upcoming: v.upcoming.length, waiting: v.waiting.length, completed: v.completed.length, deleted: v.deleted.length };
  }
  /** Open tasks, for dependency pickers. */
  get open(): Task[] {
    return this.#all.filter((t) => t.status !== 'completed' && t.status !== 'deleted').sort(byDeadline);
  }
  get(id: string): Task | undefined {
    return this.#byId.get(id);
  }
  isHighlighted(id: string): boolean {
    return this.#highlighted.has(id);
  }
  /** True when a dependency of `task` is not completed yet. */
  isBlocked(task: Task): boolean {
    return task.dependencies.some((id) => this.#byId.get(id)?.status !== 'completed');
  }

  /** Marks tasks the assistant just changed, for a moment. */
  highlight(ids: Iterable<string>): void {
    const next = new Set(this.#highlighted);
    const added: string[] = [];
    for (const id of ids) {
      next.add(id);
      added.push(id);
    }
    if (added.length === 0) return;
    this.#highlighted = next;
    setTimeout(() => {
      const rest = new Set(this.#highlighted);
      for (const id of added) rest.delete(id);
      this.#highlighted = rest;
    }, highlightMs);
  }

  /**
   * Brings a task into the list (a search's hit): the view that holds it, every project unless its own is shown,
   * and marks it for a moment. False when this tab does not have it (purged meanwhile).
   */
  reveal(id: string): boolean {
    const task = this.#byId.get(id);
    if (!task) return false;
    if (this.#project !== null && task.project !== this.#project) this.#project = null;
    if (!this.visible.some((t) => t.id === id)) {
      this.#view = task.status === 'deleted' ? 'deleted' : task.status === 'completed' ? 'completed' : 'active';
    }
    this.highlight([id]);
    return true;
  }

  reset(): void {
    if (this.#syncRetry !== null) clearTimeout(this.#syncRetry);
    this.#syncRetry = null;
    this.#syncRetryMs = SYNC_RETRY_FIRST_MS;
    this.#byId = new Map();
    this.#seq = null;
    this.#loaded = false;
    this.#tombstones.clear();
    this.#highestSeen = 0;
    this.#conflict = null;
    this.#project = null;
  }

  async create(input: Omit<TaskCreate, 'id'>): Promise<Task | null> {
    const id = newId();
    const res = await this.#own(id, this.deps.connection.request('task:create', { ...input, id }));
    if (!res.ok) return this.#failed(res.error, 'Could not create the task');
    this.#upsert(res.data.task, 'ack');
    return res.data.task;
  }

  /** Sends `expectedVersion` so that an edit made elsewhere in between is a CONFLICT, not lost. */
  async update(task: Task, patch: TaskPatch, options: { force?: boolean } = {}): Promise<Task | null> {
    const expectedVersion = options.force ? (this.#byId.get(task.id)?.version ?? task.version) : task.version;
    const res = await this.#own(task.id, this.deps.connection.request('task:update', { id: task.id, expectedVersion, patch }));
    if (!res.ok) {
      if (res.error.code === 'CONFLICT' && isTask(res.error.details?.task)) {
        this.#upsert(res.error.details.task, 'ack');
        this.#conflict = { patch, theirs: res.error.details.task };
        return null;
      }
      return this.#failed(res.error, 'Could not save the task');
    }
    if (this.#conflict?.theirs.id === task.id) this.#conflict = null;
    this.#upsert(res.data.task, 'ack');
    return res.data.task;
  }

  /** Applies this tab's refused edit over the current version. */
  async overwriteConflict(): Promise<void> {
    const conflict = this.#conflict;
    if (!conflict) return;
    const current = this.#byId.get(conflict.theirs.id) ?? conflict.theirs;
    this.#conflict = null;
    await this.update(current, conflict.patch);
  }

  dismissConflict(): void {
    this.#conflict = null;
  }

  async complete(task: Task, notes?: string): Promise<boolean> {
    const res = await this.#own(task.id, this.deps.connection.request('task:complete', notes ? { id: task.id, notes } : { id: task.id }));
    if (!res.ok) return this.#failed(res.error, 'Could not complete the task') ?? false;
    this.#upsert(res.data.task, 'ack');
    if (res.data.next) {
      this.#upsert(res.data.next, 'ack');
      this.deps.toasts.show(`Next occurrence due ${res.data.next.deadline ?? 'later'}.`, 'success');
    }
    return true;
  }

  async remove(task: Task): Promise<boolean> {
    const res = await this.#own(task.id, this.deps.connection.request('task:delete', { id: task.id }));
    if (!res.ok) return this.#failed(res.error, 'Could not delete the task') ?? false;
    this.#upsert(res.data.task, 'ack');
    return true;
  }

  async restore(task: Task): Promise<boolean> {
    const res = await this.#own(task.id, this.deps.connection.request('task:restore', { id: task.id }));
    if (!res.ok) return this.#failed(res.error, 'Could not restore the task') ?? false;
    this.#upsert(res.data.task, 'ack');
    return true;
  }

  async purge(task: Task): Promise<boolean> {
    const res = await this.deps.connection.request('task:purge', { id: task.id });
    if (!res.ok) return this.#failed(res.error, 'Could not delete the task for good') ?? false;
    this.#remove(task.id, task.seq);
    return true;
  }

  async next(intensity: IntensityClass | null): Promise<{ task: Task | null; score: number | null } | WireError> {
    const res = await this.deps.connection.request('task:next', intensity ? { intensity } : {});
    return res.ok ? res.data : res.error;
  }

  /** Marks `id` as this tab's own change until a moment after the answer (its push may come later). */
  async #own<T>(id: string, work: Promise<T>): Promise<T> {
    this.#mine.set(id, (this.#mine.get(id) ?? 0) + 1);
    try {
      return await work;
    } finally {
      setTimeout(() => {
        const n = (this.#mine.get(id) ?? 1) - 1;
        if (n <= 0) this.#mine.delete(id);
        else this.#mine.set(id, n);
      }, 1_000);
    }
  }

  #failed(error: WireError, what: string): null {
    this.deps.toasts.show(`${what}: ${describeError(error)}`, 'error');
    return null;
  }

  /** A push with `seq`: applied when it is the next one, or applied and followed by a sync on a gap. */
  #pushed(seq: number, apply: () => void): void {
    this.#highestSeen = Math.max(this.#highestSeen, seq);
    apply();
    if (this.#seq === null || this.#syncing) {
      if (this.#syncing) this.#resync = true;
      return;
    }
    if (seq === this.#seq + 1) this.#seq = seq;
    else if (seq > this.#seq + 1) void this.#sync(seq);
  }

  /** Asks for what changed since the local `seq` (or everything, the first time). */
  #sync(serverSeq: number): Promise<void> {
    this.#highestSeen = Math.max(this.#highestSeen, serverSeq);
    if (this.#syncing) {
      this.#resync = true;
      return this.#syncing;
    }
    // A server behind this tab (its database restored from a backup) answers the sync with a reset.
    if (this.#seq !== null && this.#seq === serverSeq && this.#loaded) return Promise.resolve();
    this.#syncing = (async () => {
      let rounds = 0;
      do {
        this.#resync = false;
        this.#touchedDuringSync.clear();
        const since = this.#seq ?? 0;
        const res = await this.deps.connection.request('task:sync', { since }, 20_000);
        if (!res.ok) {
          if (res.error.code === 'UNAVAILABLE') this.#retrySyncLater();
          else this.deps.toasts.show(`Could not load tasks: ${describeError(res.error)}`, 'error');
          return;
        }
        this.#syncRetryMs = SYNC_RETRY_FIRST_MS;
        this.#applySync(res.data, since === 0 && this.#seq === null);
      } while (++rounds < 5 && (this.#resync || (this.#seq !== null && this.#seq < this.#highestSeen)));
    })().finally(() => {
      this.#syncing = null;
      this.#touchedDuringSync.clear();
    });
    return this.#syncing;
  }

  /**
   * The server could not answer (its database restarting, say) while the socket stayed up: no push may come to
   * reveal what this tab missed, so it asks again, less often each time. A reconnect syncs by itself.
   */
  #retrySyncLater(): void {
    if (this.#syncRetry !== null) return;
    const delay = this.#syncRetryMs;
    this.#syncRetryMs = Math.min(this.#syncRetryMs * 2, SYNC_RETRY_MAX_MS);
    this.#syncRetry = setTimeout(() => {
      this.#syncRetry = null;
      if (this.deps.connection.live) void this.#sync(this.#highestSeen);
    }, delay);
  }

  #applySync(result: TaskSyncResult, first: boolean): void {
    if (result.reset) this.#highestSeen = result.seq;
    if (result.reset || first) {
      const next = new Map<string, Task>();
      for (const task of result.tasks) next.set(task.id, task);
      // Pushes that arrived during the request may be newer than the snapshot. Anything else the copy holds
      // beyond the snapshot's seq is from a history the server no longer has (a restore): the snapshot wins.
      for (const task of this.#byId.values()) {
        const known = next.get(task.id);
        if (task.seq > result.seq && this.#touchedDuringSync.has(task.id) && (!known || known.seq < task.seq)) next.set(task.id, task);
      }
      for (const [id, seq] of this.#tombstones) {
        if (seq <= result.seq) continue;
        if (this.#touchedDuringSync.has(id)) next.delete(id);
        else this.#tombstones.delete(id);
      }
      this.#byId = next;
    } else {
      const next = new Map(this.#byId);
      for (const task of result.tasks) {
        const known = next.get(task.id);
        if ((known && known.seq >= task.seq) || (this.#tombstones.get(task.id) ?? -1) > task.seq) continue;
        next.set(task.id, task);
      }
      for (const id of result.removed) next.delete(id);
      this.#byId = next;
    }
    this.#seq = result.reset ? result.seq : Math.max(this.#seq ?? 0, result.seq);
    this.#loaded = true;
  }

  #upsert(task: Task, source: 'push' | 'ack'): void {
    if (this.#syncing) this.#touchedDuringSync.add(task.id);
    const known = this.#byId.get(task.id);
    if (known && known.seq >= task.seq) return;
    if ((this.#tombstones.get(task.id) ?? -1) > task.seq) return;
    const next = new Map(this.#byId);
    next.set(task.id, task);
    this.#byId = next;
    if (source === 'push' && !this.#mine.has(task.id) && this.deps.assistantActive()) this.highlight([task.id]);
    if (this.#conflict?.theirs.id === task.id && task.version > this.#conflict.theirs.version) {
      this.#conflict = { ...this.#conflict, theirs: task };
    }
  }

  #remove(id: string, seq: number): void {
    if (this.#syncing) this.#touchedDuringSync.add(id);
    this.#tombstones.set(id, Math.max(seq, this.#tombstones.get(id) ?? 0));
    if (!this.#byId.has(id)) return;
    const next = new Map(this.#byId);
    next.delete(id);
    this.#byId = next;
  }

  #computeViews(tasks: Task[]): Record<TaskListView, Task[]> {
    const until = addDays(this.#today, upcomingDays);
    const active = tasks.filter((t) => t.status !== 'completed' && t.status !== 'deleted');
    return {
      active: [...active].sort(byDeadline),
      upcoming: active.filter((t) => t.deadline !== null && t.deadline <= until).sort(byDeadline),
      waiting: active.filter((t) => t.status === 'waiting_on').sort((a, b) => a.updatedAt.localeCompare(b.updatedAt)),
      completed: tasks
        .filter((t) => t.status === 'completed')
        .sort((a, b) => (b.completedAt ?? '').localeCompare(a.completedAt ?? '')),
      deleted: tasks.filter((t) => t.status === 'deleted').sort((a, b) => (b.deletedAt ?? '').localeCompare(a.deletedAt ?? '')),
    };
  }
}

function isTask(value: unknown): value is Task {
  return typeof value === 'object' && value !== null && typeof (value as Task).id === 'string' && typeof (value as Task).version === 'number';
}
