/**
 * The command palette (Ctrl/⌘-K, CHAT-11): searches the user's tasks, messages and conversations as they type,
 * a moment after the last key, and goes to the hit they choose. Answers to an older query than the one shown are
 * dropped, so a slow answer never replaces a newer one.
 */
import type { SearchResult } from '$shared/schemas/chat';
import type { Connection } from '../../lib/connection.svelte';
import { describeError } from '../../lib/errors';

/** Wait after the last key before searching (ms). */
export const searchDebounceMs = 150;

type SearchState = 'idle' | 'searching' | 'done' | 'error';

export interface SearchDeps {
  connection: Connection;
  /** Shows the hit: its task in the tasks panel, its conversation in the chat. */
  go(result: SearchResult): void;
}

export class SearchPalette {
  #open = $state(false);
  #query = $state('');
  #results = $state.raw<SearchResult[]>([]);
  #state = $state<SearchState>('idle');
  #error = $state('');
  #active = $state(-1);
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** the number of the latest search asked: only its answer is shown */
  #asked = 0;

  constructor(private readonly deps: SearchDeps) {}

  get isOpen(): boolean {
    return this.#open;
  }
  get query(): string {
    return this.#query;
  }
  set query(query: string) {
    this.#query = query;
    this.#schedule();
  }
  get results(): SearchResult[] {
    return this.#results;
  }
  get state(): SearchState {
    return this.#state;
  }
  get error(): string {
    return this.#error;
  }
  /** The index of the option the arrow keys are on, -1 for none. */
  get active(): number {
    return this.#active;
  }
  set active(index: number) {
    if (index >= -1 && index < this.#results.length) this.#active = index;
  }

  open(): void {
    this.#open = true;
  }

  /** Closes and forgets the query, so that the next open starts empty. */
  close(): void {
    this.#open = false;
    clearTimeout(this.#timer);
    this.#asked++;
    this.#query = '';
    this.#results = [];
    this.#state = 'idle';
    this.#active = -1;
  }

  toggle(): void {
    if (this.#open) this.close();
    else this.open();
  }

  /** Moves the active option by `step`, wrapping at the ends. */
  move(step: 1 | -1): void {
    const n = this.#results.length;
    if (n === 0) return;
    this.#active = this.#active === -1 ? (step > 0 ? 0 : n - 1) : (this.#active + step + n) % n;
  }

  /** Goes to the active hit (the first when none is), then closes. */
  choose(index = this.#active === -1 ? 0 : this.#active): void {
    const result = this.#results[index];
    if (!result) return;
    this.close();
    this.deps.go(result);
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    const asked = ++this.#asked;
    if (this.#query.trim() === '') {
      this.#results = [];
      this.#state = 'idle';
      this.#active = -1;
      return;
    }
    this.#state = 'searching';
    this.#timer = setTimeout(() => void this.#search(asked, this.#query), searchDebounceMs);
  }

  async #search(asked: number, query: string): Promise<void> {
    const res = await this.deps.connection.request('search', { query });
    if (asked !== this.#asked) return;
    if (!res.ok) {
      this.#state = 'error';
      this.#error = describeError(res.error);
      return;
    }
    this.#results = res.data.results;
    this.#active = res.data.results.length > 0 ? 0 : -1;
    this.#state = 'done';
  }
}
