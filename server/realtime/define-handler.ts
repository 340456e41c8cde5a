/**
 * The one way to register a client→server event (CONVENTIONS 6, RT-3): Socket.IO
 * ignores a listener's promise, so this parses the payload with the shared
 * schema, rate-limits per user, runs the handler, and maps the result or error
 * to the typed ack, recording metrics on the way.
 *
 * A handler's payload schema comes from the contract (`shared/events.ts`) and
 * its result type is the contract's ack data for its event; the handlers of a
 * namespace form one map that `tsc` checks against every request event
 * (`HandlersOf`), so a missing, duplicated or wrongly typed handler does not
 * compile.
 */
import type { z } from 'zod';
import type { Ack } from '../../shared/errors.js';
import {
  opsRequestSchemas,
  requestSchemas,
  type AckData,
  type OpsAckData,
  type OpsParsedPayload,
  type OpsRequestEvent,
  type ParsedPayload,
  type RequestEvent,
} from '../../shared/events.js';
import { appError, ErrorCode, toAppError, validationError, type AppError } from '../errors.js';
import type { EventHooks, LimitScope } from '../hooks.js';
import { securityLog, type Logger } from '../logger.js';
import type { EventLimiter } from './event-limiter.js';
import { inFlight } from './in-flight.js';
import type { AppSocket } from './types.js';

export interface HandlerContext {
  userId: string;
  sessionId: string;
  role: 'user' | 'admin';
  socket: AppSocket;
}

export interface Handler<E extends string = string, P = unknown, R = unknown> {
  event: E;
  schema: z.ZodType<P>;
  run(ctx: HandlerContext, payload: P): Promise<R>;
  /** a second, stricter per-user limit this event also counts against (RT-6: `chat:send`) */
  alsoLimitedBy?: Exclude<LimitScope, 'socket'>;
}

/** A handler for each of the request events `E`, and for nothing else. */
export type HandlersOf<E extends RequestEvent> = { readonly [K in E]: Handler<K, ParsedPayload<K>, AckData[K]> };
/** The handlers of the default namespace: one for every request event. */
export type HandlerMap = HandlersOf<RequestEvent>;
/** The request events whose names start with `prefix:` (a feature's own). */
export type EventsOf<Prefix extends string> = Extract<RequestEvent, `${Prefix}:${string}`>;

/** The same for the `/ops` namespace. */
export type OpsHandlersOf<E extends OpsRequestEvent> = { readonly [K in E]: Handler<K, OpsParsedPayload<K>, OpsAckData[K]> };
export type OpsHandlerMap = OpsHandlersOf<OpsRequestEvent>;

/** The scopes an event counts against, by its handler's `alsoLimitedBy` (built once, not per event). */
const limitScopes: Record<LimitScope, readonly LimitScope[]> = { socket: ['socket'], chat: ['socket', 'chat'] };

/** Declares the handler of a request event: its payload schema and ack data are the contract's. */
export function defineHandler<E extends RequestEvent>(
  event: E,
  run: (ctx: HandlerContext, payload: ParsedPayload<E>) => Promise<AckData[E]>,
  options: { alsoLimitedBy?: 'chat' } = {},
): Handler<E, ParsedPayload<E>, AckData[E]> {
  return { event, schema: requestSchemas[event] as unknown as z.ZodType<ParsedPayload<E>>, run, ...options };
}

/** Declares the handler of an `/ops` request event. */
export function defineOpsHandler<E extends OpsRequestEvent>(
  event: E,
  run: (ctx: HandlerContext, payload: OpsParsedPayload<E>) => Promise<OpsAckData[E]>,
): Handler<E, OpsParsedPayload<E>, OpsAckData[E]> {
  return { event, schema: opsRequestSchemas[event] as unknown as z.ZodType<OpsParsedPayload<E>>, run };
}

export interface HandlerRuntime {
  limiter: EventLimiter;
  logger: Logger;
  hooks: EventHooks;
  /** Runs before each event's handler (after the rate limit); throws to refuse it (`/ops` re-checks the admin). */
  authorize?: (socket: AppSocket) => Promise<void>;
}

/**
 * Builds the handler table once; each socket then gets a single listener that
 * dispatches by event name (one closure per socket instead of one per event).
 */
export function createDispatcher(handlers: HandlerMap | OpsHandlerMap, runtime: HandlerRuntime): (socket: AppSocket) => void {
  const byEvent = new Map<string, Handler>(Object.values(handlers).map((h: Handler) => [h.event, h]));
  const { hooks, limiter } = runtime;
  /** RT-8: a dropped event still counts against the user's event limit, and flooding with them disconnects. */
  const countDropped = (socket: AppSocket, reason: 'unknown_event' | 'no_ack') => {
    hooks.onDropped(reason);
    try {
      limiter.consume(socket.data.userId, limitScopes.socket);
    } catch (err) {
      const appErr = toAppError(err);
      if (appErr.code === ErrorCode.RATE_LIMITED) onRateLimited(socket, appErr, reason, runtime);
    }
  };
  return (socket) => {
    socket.onAny((event: unknown, ...args: unknown[]) => {
      const handler = typeof event === 'string' ? byEvent.get(event) : undefined;
      if (!handler) {
        countDropped(socket, 'unknown_event');
        return;
      }
      const ack = args[args.length - 1];
      if (typeof ack !== 'function') {
        countDropped(socket, 'no_ack');
        return;
      }
      // (ack) alone or (a, b, …, ack) is a bad payload: answered VALIDATION, so the client never waits for nothing.
      const payload = args.length === 2 ? args[0] : args.length === 1 ? undefined : args.slice(0, -1);
      void inFlight(socket, () => runEvent(socket, handler, payload, ack as (res: Ack<unknown>) => void, runtime));
    });
  };
}

async function runEvent(socket: AppSocket, handler: Handler, payload: unknown, ack: (res: Ack<unknown>) => void, runtime: HandlerRuntime): Promise<void> {
  const { limiter, logger, hooks } = runtime;
  const started = performance.now();
  const { userId, sessionId, role } = socket.data;
  let response: Ack<unknown>;
  try {
    limiter.consume(userId, limitScopes[handler.alsoLimitedBy ?? 'socket']);
    if (runtime.authorize) await runtime.authorize(socket);
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
      throw appError(ErrorCode.VALIDATION, { message: 'The payload must be a JSON object', issues: [{ path: '', message: 'Expected an object' }] });
    }
    const parsed = handler.schema.safeParse(payload);
    if (!parsed.success) throw validationError(parsed.error);
    const data = await handler.run({ userId, sessionId, role, socket }, parsed.data);
    response = { ok: true, data };
  } catch (err) {
    const appErr = toAppError(err);
    if (appErr.code === ErrorCode.INTERNAL) {
      logger.error({ err: appErr.cause, errorId: appErr.details?.errorId, event: handler.event, userId }, 'event failed');
    }
    if (appErr.code === ErrorCode.RATE_LIMITED) {
      onRateLimited(socket, appErr, handler.event, runtime);
      response = { ok: false, error: { code: appErr.code, message: appErr.message, retryAfterMs: appErr.toWire().retryAfterMs ?? 0 } };
    } else {
      response = { ok: false, error: appErr.toWire() };
    }
  }
  hooks.onEvent(handler.event, response.ok ? 'ok' : response.error.code, (performance.now() - started) / 1000);
  try {
    ack(response);
  } catch (err) {
    logger.warn({ err, event: handler.event }, 'ack failed');
  }
}

/**
 * What every refusal by the event limits does, whether the event had a handler or was dropped: the metric, the
 * security log, and for a socket flooding past twice its limit, a disconnect once its answer has gone.
 */
function onRateLimited(socket: AppSocket, appErr: AppError, event: string, { hooks, logger }: HandlerRuntime): void {
  const { userId, sessionId } = socket.data;
  const scope = appErr.details?.scope === 'chat' ? 'chat' : 'socket';
  hooks.onRateLimited(scope);
  securityLog(logger, 'rate_limited', { scope, userId, event });
  if (appErr.details?.flooding) {
    logger.warn({ userId, sessionId, event }, 'socket disconnected for flooding');
    setImmediate(() => socket.disconnect(true));
  }
}
