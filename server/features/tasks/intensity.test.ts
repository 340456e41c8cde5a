import { describe, expect, it } from 'vitest';
import { guessIntensity, waitingOnFromTitle } from './intensity.js';

describe('guessIntensity', () => {
  it('heavy words give 4', () => {
    for (const t of ['Plan the project', 'DEVELOP the app', 'design logo', 'Research options', 'build shed', 'Implement X', 'create report']) {
      expect(guessIntensity(t), t).toBe(4);
    }
  });

  it('light words give 2', () => {
    for (const t of ['Email Bob', 'call mum', 'Team meeting', 'review PR', 'Check mail', 'quick fix', 'Brief notes']) {
      expect(guessIntensity(t), t).toBe(2);
    }
  });

  it('heavy words win over light ones', () => {
    expect(guessIntensity('Quick call about the project')).toBe(4);
  });

  it('only whole words count, otherwise 3', () => {
    expect(guessIntensity('Buy groceries')).toBe(3);
    expect(guessIntensity('Recall the emails')).toBe(3);
    expect(guessIntensity('projects overview')).toBe(3);
    expect(guessIntensity('rebuild the fence')).toBe(3);
  });
});

describe('waitingOnFromTitle', () => {
  it('reads "waiting for X" and "waiting on X", any case', () => {
    expect(waitingOnFromTitle('Contract: waiting for Legal ')).toBe('Legal');
    expect(waitingOnFromTitle('Waiting on Bob to reply')).toBe('Bob to reply');
    expect(waitingOnFromTitle('WAITING FOR   the bank')).toBe('the bank');
  });

  it('is null otherwise', () => {
    expect(waitingOnFromTitle('Buy milk')).toBeNull();
    expect(waitingOnFromTitle('waiting for ')).toBeNull();
    expect(waitingOnFromTitle('awaiting for Bob')).toBeNull();
  });

  it('keeps at most 200 characters', () => {
    const who = waitingOnFromTitle(`waiting for ${'x'.repeat(300)}`);
    expect(who).toHaveLength(200);
  });
});
