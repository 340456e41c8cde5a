/** Guesses for fields a task was created without. */
import { limits } from '../../../shared/limits.js';

const heavyWords = /\b(?:project|develop|design|research|build|implement|create)\b/i;
const lightWords = /\b(?:email|call|meeting|review|check|quick|brief)\b/i;

/** 4 for titles with a heavy word, else 2 for a light word, else 3 (whole words, any case). */
export function guessIntensity(title: string): number {
  if (heavyWords.test(title)) return 4;
  if (lightWords.test(title)) return 2;
  return 3;
}

const waitingPattern = /\bwaiting\s+(?:for|on)\s+(.+)$/is;

/** "Waiting for Bob's reply" → "Bob's reply"; null when the title says nothing of the kind. */
export function waitingOnFromTitle(title: string): string | null {
  const match = waitingPattern.exec(title);
  const who = match?.[1]?.trim().slice(0, limits.taskWaitingOnMax).trim();
  return who ? who : null;
}
