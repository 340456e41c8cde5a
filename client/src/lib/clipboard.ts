import type { Toasts } from './toasts.svelte';

/** Copies `text` and says so, or says to copy by hand (the clipboard needs a secure context and permission). */
export async function copyText(text: string, toasts: Toasts, done = 'Copied.'): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    toasts.show(done, 'success');
  } catch {
    toasts.show('Could not copy: select the text and copy it yourself.', 'error');
  }
}
