export type ThemeChoice = 'system' | 'light' | 'dark';

const key = 'sam-theme';

/** Light and dark themes: follows prefers-color-scheme unless the user picks one (kept per browser). */
export class Theme {
  #choice = $state<ThemeChoice>('system');
  #systemDark = $state(false);

  constructor() {
    const saved = safeGet(key);
    if (saved === 'light' || saved === 'dark') this.#choice = saved;
    const media = window.matchMedia('(prefers-color-scheme: dark)');
    this.#systemDark = media.matches;
    media.addEventListener('change', (e) => {
      this.#systemDark = e.matches;
      this.#apply();
    });
    this.#apply();
  }

  get choice(): ThemeChoice {
    return this.#choice;
  }

  /** The theme in effect. */
  get effective(): 'light' | 'dark' {
    return this.#choice === 'system' ? (this.#systemDark ? 'dark' : 'light') : this.#choice;
  }

  toggle(): void {
    this.set(this.effective === 'dark' ? 'light' : 'dark');
  }

  set(choice: ThemeChoice): void {
    this.#choice = choice;
    if (choice === 'system') safeRemove(key);
    else safeSet(key, choice);
    this.#apply();
  }

  /**
   * Switches with every transition off: a card that faded to the new colours while its text switched at once
   * would be unreadable meanwhile (white on white for a moment in the dark theme). The forced layout computes
   * the new colours while the `theme-switching` class holds transitions off, so removing it starts none.
   */
  #apply(): void {
    const root = document.documentElement;
    root.classList.add('theme-switching');
    if (this.#choice === 'system') delete root.dataset.theme;
    else root.dataset.theme = this.#choice;
    void root.offsetWidth;
    root.classList.remove('theme-switching');
  }
}

function safeGet(k: string): string | null {
  try {
    return localStorage.getItem(k);
  } catch {
    return null;
  }
}
function safeSet(k: string, v: string): void {
  try {
    localStorage.setItem(k, v);
  } catch {
    /* private mode: the choice lasts for this page only */
  }
}
function safeRemove(k: string): void {
  try {
    localStorage.removeItem(k);
  } catch {
    /* as above */
  }
}
