/**
 * The hooks through which the realtime layer and the assistant report to the
 * operators' metrics (`features/ops/metrics.ts`). A leaf module: it imports
 * nothing of the server, so that metrics, the gateway and the composition root
 * can all name these types without importing each other.
 */
import type { ErrorCode } from '../shared/errors.js';

/** Outcome label of an event: `ok` or the error code. */
export type EventOutcome = 'ok' | ErrorCode;

/** The per-user event limits (RT-6): every event counts against `socket`, a `chat:send` also against `chat`. */
export type LimitScope = 'socket' | 'chat';

/** Hooks for sam_socket_events_total and friends. */
export interface EventHooks {
  onEvent(event: string, outcome: EventOutcome, seconds: number): void;
  onDropped(reason: 'unknown_event' | 'no_ack'): void;
  onRateLimited(scope: LimitScope): void;
}

/** Hooks for the sockets' lifecycle. */
export interface GatewayHooks extends EventHooks {
  onConnect(userId: string): void;
  onDisconnect(reason: string, userId: string): void;
  onHandshakeFailure(reason: string): void;
}

/** Hooks for reminders (REM-1): each fired one, how long after its time, and failed claim rounds. */
export interface ReminderHooks {
  onFired(lateSeconds: number, late: boolean): void;
  onClaimFailed(): void;
}

/** The sign-in security events (their log types, PROTOCOL §7) that sam_auth_events_total counts. */
export const authEventTypes = ['login_succeeded', 'login_failed', 'account_locked', 'refresh_reuse_detected'] as const;
export type AuthEventType = (typeof authEventTypes)[number];

/** Hooks for sign-ins: each of the events above, as the security log writes it. */
export interface AuthHooks {
  onAuthEvent(type: AuthEventType): void;
}

/** Hooks for the assistant's generations. */
export interface ChatHooks {
  onGenerationStart(): void;
  onGenerationEnd(): void;
  onFirstToken(seconds: number): void;
  onOutputTokens(count: number): void;
  /** one upstream round's prompt tokens: uncached, read from the prompt cache, written to it (CHAT-12) */
  onPromptTokens(usage: { inputTokens: number; cacheReadTokens: number; cacheCreationTokens: number }): void;
  onUpstreamError(kind: string): void;
}
