import { describe, expect, it } from 'vitest';
import { snippetParts } from './snippet';

describe('snippetParts', () => {
  it('[CHAT-11] splits a snippet into plain and marked runs', () => {
    expect(snippetParts('Buy «tulip» bulbs … the «tulip» bed')).toEqual([
      { text: 'Buy ', mark: false },
      { text: 'tulip', mark: true },
      { text: ' bulbs … the ', mark: false },
      { text: 'tulip', mark: true },
      { text: ' bed', mark: false },
    ]);
    expect(snippetParts('«whole»')).toEqual([{ text: 'whole', mark: true }]);
    expect(snippetParts('')).toEqual([]);
  });

  it('[CHAT-11] keeps markup as text and a « or » without its pair as it is', () => {
    expect(snippetParts('<img src=x onerror=alert(1)> «b»')).toEqual([
      { text: '<img src=x onerror=alert(1)> ', mark: false },
      { text: 'b', mark: true },
    ]);
    expect(snippetParts('a » b « c')).toEqual([{ text: 'a » b « c', mark: false }]);
  });
});
