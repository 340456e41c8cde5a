/** Profile, sessions, export and deletion (PROTOCOL §6.3). */
import type { WireError } from '$shared/errors';
import type { SessionView } from '$shared/schemas/account';
import type { Connection } from '../../lib/connection.svelte';
import type { Session } from '../../lib/session.svelte';
import type { Toasts } from '../../lib/toasts.svelte';
import { describeError } from '../../lib/errors';
import { downloadFile } from '../../lib/download';

export class AccountStore {
  #sessions = $state.raw<SessionView[]>([]);
  #sessionsState = $state<'idle' | 'loading' | 'ready' | 'error'>('idle');
  #busy = $state<string | null>(null);

  constructor(
    private readonly connection: Connection,
    private readonly session: Session,
    private readonly toasts: Toasts,
  ) {
    connection.on('user:changed', ({ user }) => session.setUser(user));
  }

  get sessions(): SessionView[] {
    return this.#sessions;
  }
  get sessionsState(): string {
    return this.#sessionsState;
  }
  /** which action is running, to disable its button */
  get busy(): string | null {
    return this.#busy;
  }

  async updateProfile(fields: { fullName: string; timezone: string }): Promise<WireError | null> {
    return this.#run('profile', async () => {
      const res = await this.connection.request('user:update', fields);
      if (!res.ok) return res.error;
      this.session.setUser(res.data.user);
      this.toasts.show('Profile saved.', 'success');
      return null;
    });
  }

  async loadSessions(): Promise<void> {
    this.#sessionsState = 'loading';
    const res = await this.connection.request('session:list', {});
    if (res.ok) {
      this.#sessions = res.data.sessions;
      this.#sessionsState = 'ready';
    } else {
      this.#sessionsState = 'error';
      this.toasts.show(`Could not list sessions: ${describeError(res.error)}`, 'error');
    }
  }

  async revoke(id: string): Promise<void> {
    await this.#run(`revoke:${id}`, async () => {
      const res = await this.connection.request('session:revoke', { id });
      if (!res.ok) {
        this.toasts.show(`Could not sign that session out: ${describeError(res.error)}`, 'error');
        return null;
      }
      this.#sessions = this.#sessions.filter((s) => s.id !== id);
      this.toasts.show('Session signed out.', 'success');
      return null;
    });
  }

  /** Downloads everything the server holds about the user as a JSON file. */
  async exportData(): Promise<void> {
    await this.#run('export', async () => {
      const res = await this.connection.request('user:export', {}, 30_000);
      if (!res.ok) {
        this.toasts.show(`Export failed: ${describeError(res.error)}`, 'error');
        return null;
      }
      downloadFile(`sam-export-${new Date().toISOString().slice(0, 10)}.json`, JSON.stringify(res.data, null, 2), 'application/json');
      return null;
    });
  }

  async deleteAccount(password: string): Promise<WireError | null> {
    return this.#run('delete', async () => {
      const res = await this.connection.request('user:delete', { password }, 30_000);
      if (!res.ok) return res.error;
      this.session.end('deleted');
      return null;
    });
  }

  async #run<T>(name: string, work: () => Promise<T>): Promise<T> {
    this.#busy = name;
    try {
      return await work();
    } finally {
      this.#busy = null;
    }
  }
}
