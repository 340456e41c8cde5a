/**
 * A search snippet (CHAT-11) as runs of text, the matched words marked: the server marks them «…» in plain text,
 * and the palette draws each run as text (escaped by Svelte), the marked ones in <mark>, never as HTML.
 */
export interface SnippetPart {
  text: string;
  mark: boolean;
}

/**
 * `a «b» c` → a, b (marked), c. The server writes the text's own « » as ‹ ›, so each pair is a mark; a lone « or »
 * stays text.
 */
export function snippetParts(snippet: string): SnippetPart[] {
  return snippet
    .split(/«([^«»]*)»/)
    .map((text, i) => ({ text, mark: i % 2 === 1 }))
    .filter((part) => part.text !== '');
}
