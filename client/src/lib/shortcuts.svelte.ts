/**
 * Keyboard shortcuts (issue 20): single keys on the main screen, with `?`
 * listing them. None fires while the user types in a field or holds
 * Ctrl/Meta/Alt, so they never steal a letter or a browser shortcut.
 */
import { getContext, setContext, tick } from 'svelte';
import type { SamApp } from './app.svelte';

export interface ShortcutHelp {
  keys: string[];
  description: string;
}

/** What the `?` overlay lists, in its order. */
export const shortcutList: readonly ShortcutHelp[] = [
  { keys: ['?'], description: 'Show these shortcuts' },
  { keys: ['/'], description: 'Focus the chat box' },
  { keys: ['q', 'n'], description: 'Focus quick-add' },
  { keys: ['c'], description: 'Start a new chat' },
  { keys: ['j'], description: 'Select the next task' },
  { keys: ['k'], description: 'Select the previous task' },
  { keys: ['x'], description: 'Complete the selected task' },
  { keys: ['Esc'], description: 'Close this list, or clear the task selection' },
];

export const chatInputId = 'composer-input';
export const quickAddInputId = 'quick-add';

/** True when keys pressed on `target` are text being typed, not commands. */
export function isTypingTarget(target: EventTarget | null): boolean {
  if (!(target instanceof Element)) return false;
  if (target instanceof HTMLElement && target.isContentEditable) return true;
  return target.closest('input, textarea, select') !== null;
}

export class Shortcuts {
  #overlayOpen = $state(false);
  #selectedId = $state<string | null>(null);
  #announcement = $state('');
  readonly #app: SamApp;
  /** the selection, while its task is still in the visible list */
  #selected: string | null;

  constructor(app: SamApp) {
    this.#app = app;
    this.#selected = $derived(this.#selectedId !== null && app.tasks.visible.some((t) => t.id === this.#selectedId) ? this.#selectedId : null);
  }

  get overlayOpen(): boolean {
    return this.#overlayOpen;
  }
  /** The task that `j`/`k` selected, if it is still listed. */
  get selectedTaskId(): string | null {
    return this.#selected;
  }
  /** What the last shortcut did, for a polite live region. */
  get announcement(): string {
    return this.#announcement;
  }

  /** Selects a task as `j`/`k` would (the search palette's hit), so that `j`, `k` and `x` go on from it. */
  selectTask(id: string): void {
    this.#selectedId = id;
  }

  openOverlay(): void {
    this.#overlayOpen = true;
  }
  closeOverlay(): void {
    this.#overlayOpen = false;
  }

  /** The window's keydown listener. */
  handle(e: KeyboardEvent): void {
    if (e.defaultPrevented || e.isComposing || e.ctrlKey || e.metaKey || e.altKey) return;
    // The overlay is a modal dialog that handles its own keys; so does any other open dialog.
    if (this.#overlayOpen || document.querySelector('dialog[open]')) return;
    if (isTypingTarget(e.target)) return;
    const app = this.#app;
    if (e.key === '?') {
      e.preventDefault();
      this.openOverlay();
      return;
    }
    if (app.screen !== 'main') return;
    switch (e.key) {
      case 'Escape':
        if (this.#selected === null) return;
        this.#selectedId = null;
        this.#announce('Task selection cleared');
        break;
      case '/':
        void this.#focus('chat', chatInputId);
        break;
      case 'q':
      case 'n':
        void this.#focus('tasks', quickAddInputId);
        break;
      case 'c':
        app.chat.open(null);
        void this.#focus('chat', chatInputId);
        this.#announce('New chat');
        break;
      case 'j':
        this.#move(1);
        break;
      case 'k':
        this.#move(-1);
        break;
      case 'x':
        void this.#complete();
        break;
      default:
        return;
    }
    e.preventDefault();
  }

  async #focus(pane: 'chat' | 'tasks', id: string): Promise<void> {
    this.#app.pane = pane;
    // On a narrow screen the pane was hidden until this update renders.
    await tick();
    document.getElementById(id)?.focus();
  }

  #move(step: 1 | -1): void {
    const list = this.#app.tasks.visible;
    if (list.length === 0) {
      this.#announce('No tasks in this view');
      return;
    }
    const at = list.findIndex((t) => t.id === this.#selected);
    const next = at === -1 ? (step > 0 ? 0 : list.length - 1) : Math.min(Math.max(at + step, 0), list.length - 1);
    const task = list[next]!;
    this.#selectedId = task.id;
    this.#app.pane = 'tasks';
    this.#announce(`${task.title}, ${next + 1} of ${list.length}`);
  }

  async #complete(): Promise<void> {
    const tasks = this.#app.tasks;
    const list = tasks.visible;
    const at = list.findIndex((t) => t.id === this.#selected);
    const task = list[at];
    if (!task) {
      this.#announce('No task selected: press j to select one');
      return;
    }
    if (task.status === 'completed' || task.status === 'deleted') {
      this.#announce(`${task.title} is not open`);
      return;
    }
    // Keep a selection to go on with: the next task, or the one before when this was the last.
    const neighbour = list[at + 1] ?? list[at - 1] ?? null;
    if (await tasks.complete(task)) {
      if (this.#selectedId === task.id) this.#selectedId = neighbour?.id ?? null;
      this.#announce(`Completed ${task.title}`);
    }
  }

  #announce(text: string): void {
    // The same words twice in a row must still be read out: clear first, then set a moment later.
    this.#announcement = '';
    setTimeout(() => (this.#announcement = text), 50);
  }
}

const key = Symbol('shortcuts');
export const provideShortcuts = (shortcuts: Shortcuts): Shortcuts => setContext(key, shortcuts);
export const useShortcuts = (): Shortcuts => getContext<Shortcuts>(key);
