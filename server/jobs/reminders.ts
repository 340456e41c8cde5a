/**
 * The claim loop of reminders (REM-1, REM-2): every node asks PostgreSQL for
 * what fell due about once a second, and PostgreSQL hands each reminder to
 * exactly one of them (`reminders.repository.ts`, `claimDue`). No timer in
 * memory is the truth: a node that starts fires what fell due while none ran,
 * and one that dies mid-fire leaves its claims to expire and be fired again.
 *
 * A hand-written loop rather than a job library: a reminder is already a row
 * with a time, claimed and updated in one statement, and the fan-out to the
 * tabs belongs to this process; a queue would be a second copy of the same
 * rows to keep in step with every task change.
 */
import type { Logger } from '../logger.js';
import type { RemindersService } from '../features/reminders/reminders.service.js';
import type { ReminderHooks } from '../hooks.js';

export interface ReminderJob {
  /** A reminder was set for `at`: fire it then rather than at the next poll. */
  wake(at: Date): void;
  /** Stops polling and waits for the round in progress. */
  stop(): Promise<void>;
}

export function startReminderJob(
  deps: { reminders: RemindersService; logger: Logger; hooks?: Pick<ReminderHooks, 'onClaimFailed'> },
  options: { pollMs?: number; batch?: number } = {},
): ReminderJob {
  const pollMs = options.pollMs ?? 1_000;
  const batch = options.batch ?? 500;
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;
  let poll: NodeJS.Timeout | undefined;
  const wakes = new Set<NodeJS.Timeout>();
  let failing = false;

  async function round(): Promise<void> {
    try {
      // A full batch means more may be waiting: go on at once.
      while (!stopped && (await deps.reminders.fireDue(batch)) === batch);
      if (failing) deps.logger.info({ job: 'reminders' }, 'reminders fire again');
      failing = false;
    } catch (err) {
      deps.hooks?.onClaimFailed();
      // Logged once per outage; the next poll tries again, and nothing claimed is lost (leases expire).
      if (!failing) deps.logger.warn({ err: (err as Error).message, job: 'reminders' }, 'firing reminders failed; retrying');
      failing = true;
    }
  }

  function tick(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    clearTimeout(poll);
    running = round().finally(() => {
      running = undefined;
      if (stopped) return;
      if (again) {
        again = false;
        tick();
      } else {
        // A random pause around pollMs: nodes that poll a fixed time after their round ends fall into step (the
        // one that claimed more ends later), and then a second node no longer shortens the wait.
        poll = setTimeout(tick, pollMs * (0.5 + Math.random()));
        poll.unref();
      }
    });
  }

  // The first round at once: what fell due while no node ran fires now (REM-2).
  tick();

  return {
    wake(at) {
      const delay = at.getTime() - Date.now();
      if (stopped || delay >= pollMs) return;
      const timer = setTimeout(() => {
        wakes.delete(timer);
        tick();
      }, Math.max(0, delay));
      timer.unref();
      wakes.add(timer);
    },
    async stop() {
      stopped = true;
      clearTimeout(poll);
      for (const timer of wakes) clearTimeout(timer);
      wakes.clear();
      await running;
    },
  };
}
