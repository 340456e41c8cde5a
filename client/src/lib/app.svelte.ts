/** The composition root: one of each state object, wired together. */
import { getContext, setContext } from 'svelte';
import { api } from './api';
import { Connection } from './connection.svelte';
import { Session } from './session.svelte';
import { Theme } from './theme.svelte';
import { Toasts } from './toasts.svelte';
import { TasksStore } from '../features/tasks/tasks.svelte';
import { ChatStore } from '../features/chat/chat.svelte';
import { AccountStore } from '../features/account/account.svelte';
import { RemindersStore } from '../features/reminders/reminders.svelte';
import { SecurityStore } from '../features/account/security.svelte';
import { takeResetToken } from '../features/auth/reset-password.svelte';

export type Screen = 'main' | 'account' | 'ops';
/** The screens with an address of their own; the others live at `/`. */
const screenPaths: Partial<Record<Screen, string>> = { ops: '/ops' };
const screenAt = (pathname: string): Screen => (pathname.replace(/\/+$/, '') === '/ops' ? 'ops' : 'main');
/** Which pane a phone-width screen shows. */
export type Pane = 'conversations' | 'chat' | 'tasks';

export class SamApp {
  readonly toasts = new Toasts();
  readonly theme = new Theme();
  readonly session = new Session(api);
  readonly connection = new Connection(this.session);
  readonly chat: ChatStore;
  readonly tasks: TasksStore;
  readonly account: AccountStore;
  readonly reminders: RemindersStore;
  readonly security: SecurityStore;

  /** the token of a password-reset link while its page shows, taken from the address at load */
  #resetToken = $state<string | null>(takeResetToken());
  #screen = $state<Screen>(screenAt(location.pathname));
  #pane = $state<Pane>('chat');

  constructor() {
    this.chat = new ChatStore({
      connection: this.connection,
      toasts: this.toasts,
      onAssistantTasks: (ids) => this.tasks.highlight(ids),
    });
    this.tasks = new TasksStore({
      connection: this.connection,
      toasts: this.toasts,
      timeZone: () => this.session.user?.timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone,
      assistantActive: () => this.chat.assistantActive,
    });
    this.account = new AccountStore(this.connection, this.session, this.toasts);
    this.reminders = new RemindersStore({
      connection: this.connection,
      toasts: this.toasts,
      timeZone: () => this.session.user?.timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone,
    });
    this.security = new SecurityStore(this.connection, this.session, this.toasts);
    this.session.onBeforeLogout(() => this.reminders.beforeSignOut());
    this.session.onStatus((status) => {
      if (status === 'authenticated') this.connection.start();
      else {
        this.connection.stop();
        this.tasks.reset();
        this.reminders.reset();
        this.chat.reset();
        this.security.reset();
        this.#screen = 'main';
        if (location.pathname !== '/') history.replaceState(null, '', '/');
      }
    });
    window.addEventListener('popstate', () => (this.#screen = screenAt(location.pathname)));
  }

  get screen(): Screen {
    return this.#screen;
  }
  set screen(screen: Screen) {
    this.#screen = screen;
    const path = screenPaths[screen] ?? '/';
    if (location.pathname !== path) history.pushState(null, '', path);
  }
  get resetToken(): string | null {
    return this.#resetToken;
  }
  /** Leaves the password-reset page for the sign-in screen (or the app, when this browser is signed in). */
  leaveReset(): void {
    this.#resetToken = null;
    if (location.pathname !== '/') history.replaceState(null, '', '/');
  }
  get pane(): Pane {
    return this.#pane;
  }
  set pane(pane: Pane) {
    this.#pane = pane;
  }

  start(): void {
    void this.session.restore();
  }
}

const key = Symbol('sam');
export const provideApp = (app: SamApp) => setContext(key, app);
export const useApp = (): SamApp => getContext<SamApp>(key);
