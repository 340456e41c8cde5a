export type ToastKind = 'info' | 'success' | 'error';
export interface Toast {
  id: number;
  kind: ToastKind;
  text: string;
}

/** Short notices, announced politely and dismissed after a while. */
export class Toasts {
  #items = $state.raw<Toast[]>([]);
  #next = 1;

  get items(): Toast[] {
    return this.#items;
  }

  show(text: string, kind: ToastKind = 'info', ms = kind === 'error' ? 8_000 : 4_000): void {
    if (this.#items.some((t) => t.text === text && t.kind === kind)) return;
    const toast = { id: this.#next++, kind, text };
    this.#items = [...this.#items.slice(-3), toast];
    setTimeout(() => this.dismiss(toast.id), ms);
  }

  dismiss(id: number): void {
    this.#items = this.#items.filter((t) => t.id !== id);
  }
}
