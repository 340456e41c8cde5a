/**
 * Prometheus metrics of one node (PROTOCOL §7), on a registry of its own, and
 * the live figures the `/ops` view shows. Label values come only from closed
 * lists (event names, error codes, reasons), so cardinality stays bounded.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { timingSafeEqual } from 'node:crypto';
import client from 'prom-client';
import type { RequestHandler } from 'express';
import { errorCodes } from '../../../shared/errors.js';
import { opsRequestEvents, requestEvents } from '../../../shared/events.js';
import { authEventTypes, type AuthHooks, type ChatHooks, type GatewayHooks, type ReminderHooks } from '../../hooks.js';
import { appError, ErrorCode } from '../../errors.js';
import { bearerToken } from '../auth/tokens.js';
import type { NodeSnapshot } from '../../../shared/schemas/ops.js';

const knownEvents = new Set<string>([...requestEvents, ...opsRequestEvents]);
const knownOutcomes = new Set<string>(['ok', ...errorCodes]);
const knownReasons = new Set([
  'transport close',
  'transport error',
  'ping timeout',
  'parse error',
  'forced close',
  'server namespace disconnect',
  'client namespace disconnect',
  'server shutting down',
  'forced server close',
]);
const bounded = (value: string, known: Set<string>, other = 'other') => (known.has(value) ? value : other);

/**
 * Durations of recent events, for the ops view's p50/p99 (last 10 s). Kept in
 * two typed rings, so that an event adds no object: an array of one object per
 * event, each kept 10 s, was promoted to the old generation at every event and
 * came back as full collections, pauses in the middle of a fan-out run.
 */
export class RecentWindow {
  private readonly at: Float64Array;
  private readonly ms: Float64Array;
  private next = 0;
  private size = 0;

  constructor(
    private readonly capacity = 65_536,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.at = new Float64Array(capacity);
    this.ms = new Float64Array(capacity);
  }

  push(ms: number): void {
    this.at[this.next] = this.clock();
    this.ms[this.next] = ms;
    this.next = (this.next + 1) % this.capacity;
    if (this.size < this.capacity) this.size++;
  }

  quantiles(): { p50: number; p99: number; perSecond: number } {
    const now = this.clock();
    const values = new Float64Array(this.size);
    let n = 0;
    let lastSecond = 0;
    // Newest first; the ring is in time order, so the first sample older than 10 s ends the window.
    for (let k = 0; k < this.size; k++) {
      const i = (this.next - 1 - k + this.capacity) % this.capacity;
      const age = now - this.at[i]!;
      if (age > 10_000) break;
      values[n++] = this.ms[i]!;
      if (age <= 1_000) lastSecond++;
    }
    if (n === 0) return { p50: 0, p99: 0, perSecond: 0 };
    const sorted = values.subarray(0, n).sort();
    const q = (p: number) => sorted[Math.min(n - 1, Math.floor(p * n))]!;
    return { p50: round(q(0.5)), p99: round(q(0.99)), perSecond: lastSecond };
  }
}
const round = (n: number) => Math.round(n * 100) / 100;

/** The share of prompt tokens read from the prompt cache (CHAT-12); null before any. */
export const cacheHitRatio = (read: number, prompt: number): number | null => (prompt > 0 ? Math.round((read / prompt) * 1000) / 1000 : null);

/** This node's figures for the ops view: a NodeSnapshot without its identity. */
export type LiveFigures = Omit<NodeSnapshot, 'id' | 'startedAt'>;

export interface Metrics {
  registry: client.Registry;
  gatewayHooks: GatewayHooks;
  chatHooks: ChatHooks;
  reminderHooks: ReminderHooks;
  authHooks: AuthHooks;
  /** counts REST requests by route and status */
  httpMiddleware: RequestHandler;
  /** GET /metrics, guarded by METRICS_TOKEN when it is set */
  route(token: string | undefined): RequestHandler;
  countBroadcast(): void;
  countRestRateLimited(): void;
  /** sam_redis_up reads `isUp` at each scrape */
  watchRedis(isUp: () => boolean): void;
  live(): LiveFigures;
  stop(): void;
}

export function createMetrics(): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const gauge = (name: string, help: string, labelNames: string[] = []) => new client.Gauge({ name, help, labelNames, registers: [registry] });
  const counter = (name: string, help: string, labelNames: string[] = []) => new client.Counter({ name, help, labelNames, registers: [registry] });

  const socketsConnected = gauge('sam_sockets_connected', 'Sockets connected to this node');
  const usersConnected = gauge('sam_socket_users_connected', 'Distinct users with at least one socket on this node');
  const connections = counter('sam_socket_connections_total', 'Sockets accepted after a successful handshake');
  const disconnections = counter('sam_socket_disconnections_total', 'Sockets closed, by reason', ['reason']);
  const handshakeFailures = counter('sam_handshake_failures_total', 'Handshakes refused, by reason', ['reason']);
  const events = counter('sam_socket_events_total', 'Client events handled, by event and outcome (ok or the error code)', ['event', 'outcome']);
  const dropped = counter('sam_socket_events_dropped_total', 'Client events dropped: unknown event or no ack', ['reason']);
  const eventDuration = new client.Histogram({
    name: 'sam_socket_event_duration_seconds',
    help: 'Time to handle a client event, from receipt to ack',
    labelNames: ['event'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const rateLimited = counter('sam_rate_limited_total', 'Requests and events refused by a rate limit, by scope', ['scope']);
  const broadcasts = counter('sam_broadcasts_total', 'Broadcasts sent to user and session rooms');
  const generationsActive = gauge('sam_generations_active', 'Assistant answers being generated on this node');
  const generations = counter('sam_generations_total', 'Assistant answers started on this node');
  const ttft = new client.Histogram({
    name: 'sam_assistant_ttft_seconds',
    help: 'Time from the start of a generation to its first token',
    buckets: [0.1, 0.25, 0.5, 1, 2, 4, 8, 16],
    registers: [registry],
  });
  const outputTokens = counter('sam_assistant_output_tokens_total', 'Output tokens streamed by the assistant');
  const promptTokens = counter(
    'sam_assistant_prompt_tokens_total',
    'Prompt tokens sent upstream, by where they came from: uncached input, read from the prompt cache, written to it (CHAT-12)',
    ['source'],
  );
  const upstreamErrors = counter('sam_upstream_errors_total', 'Failed upstream (Claude) requests, by kind', ['kind']);
  const httpRequests = counter('sam_http_requests_total', 'HTTP requests, by route and status', ['route', 'status']);
  const remindersFired = counter('sam_reminders_fired_total', 'Reminders this node fired, by whether they were late (REM-2)', ['late']);
  const reminderDelay = new client.Histogram({
    name: 'sam_reminder_delay_seconds',
    help: 'Time from a reminder\'s firesAt to this node firing it (REM-1: within 5 s)',
    buckets: [0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600],
    registers: [registry],
  });
  const reminderClaimFailures = counter('sam_reminder_claim_failures_total', 'Rounds of the reminders claim loop that failed (PostgreSQL unreachable)');
  const authEvents = counter('sam_auth_events_total', 'Sign-in security events, by their log type (login_failed counts refusals while locked too)', ['type']);
  let redisIsUp: () => boolean = () => false;
  new client.Gauge({
    name: 'sam_redis_up',
    help: "1 when this node's Redis connection is ready; 0: the revocation blacklist is unavailable, token checks go to PostgreSQL and rate limits are per process (AUTH-10)",
    registers: [registry],
    collect() {
      this.set(redisIsUp() ? 1 : 0);
    },
  });

  // Label sets from closed lists start at zero, so that a rate sees the first one and a panel shows 0, not nothing.
  const zero = (metric: client.Counter, label: string, values: readonly string[]) => {
    for (const value of values) metric.inc({ [label]: value }, 0);
  };
  zero(handshakeFailures, 'reason', ['UNAUTHENTICATED', 'TOKEN_EXPIRED', 'TOKEN_REVOKED', 'FORBIDDEN', 'RATE_LIMITED', 'UNAVAILABLE']);
  zero(dropped, 'reason', ['unknown_event', 'no_ack']);
  zero(rateLimited, 'scope', ['rest', 'socket', 'chat']);
  zero(promptTokens, 'source', ['input', 'cache_read', 'cache_creation']);
  zero(upstreamErrors, 'kind', ['overloaded', 'rate_limited', 'status_5xx', 'status_4xx', 'timeout', 'connection', 'stream', 'context_window']);
  zero(remindersFired, 'late', ['true', 'false']);
  zero(authEvents, 'type', authEventTypes);

  const lag = monitorEventLoopDelay({ resolution: 20 });
  lag.enable();
  /** mean event-loop delay since the last reading, in ms */
  const lagMs = () => {
    const value = Number.isFinite(lag.mean) ? round(lag.mean / 1e6) : 0;
    lag.reset();
    return value;
  };
  const recent = new RecentWindow();
  const tokenTimes: { at: number; n: number }[] = [];
  const users = new Map<string, number>();
  let sockets = 0;
  let failures = 0;
  let limited = 0;
  let active = 0;
  let cacheRead = 0;
  let promptTotal = 0;
  const trackUser = (userId: string, delta: 1 | -1) => {
    const next = (users.get(userId) ?? 0) + delta;
    if (next <= 0) users.delete(userId);
    else users.set(userId, next);
    usersConnected.set(users.size);
  };

  const gatewayHooks: GatewayHooks = {
    onConnect(userId) {
      trackUser(userId, 1);
      sockets++;
      socketsConnected.inc();
      connections.inc();
    },
    onDisconnect(reason, userId) {
      trackUser(userId, -1);
      sockets--;
      socketsConnected.dec();
      disconnections.inc({ reason: bounded(reason, knownReasons) });
    },
    onHandshakeFailure(reason) {
      failures++;
      handshakeFailures.inc({ reason: bounded(reason, knownOutcomes) });
    },
    onEvent(event, outcome, seconds) {
      const name = bounded(event, knownEvents);
      events.inc({ event: name, outcome: bounded(outcome, knownOutcomes) });
      eventDuration.observe({ event: name }, seconds);
      recent.push(seconds * 1000);
    },
    onDropped(reason) {
      dropped.inc({ reason });
    },
    onRateLimited(scope) {
      limited++;
      rateLimited.inc({ scope });
    },
  };

  const chatHooks: ChatHooks = {
    onGenerationStart() {
      active++;
      generationsActive.inc();
      generations.inc();
    },
    onGenerationEnd() {
      active--;
      generationsActive.dec();
    },
    onFirstToken: (seconds) => ttft.observe(seconds),
    onOutputTokens(count) {
      outputTokens.inc(count);
      tokenTimes.push({ at: Date.now(), n: count });
    },
    onUpstreamError: (kind) => upstreamErrors.inc({ kind }),
    onPromptTokens({ inputTokens, cacheReadTokens, cacheCreationTokens }) {
      promptTokens.inc({ source: 'input' }, inputTokens);
      promptTokens.inc({ source: 'cache_read' }, cacheReadTokens);
      promptTokens.inc({ source: 'cache_creation' }, cacheCreationTokens);
      cacheRead += cacheReadTokens;
      promptTotal += inputTokens + cacheReadTokens + cacheCreationTokens;
    },
  };

  const reminderHooks: ReminderHooks = {
    onFired(lateSeconds, late) {
      remindersFired.inc({ late: String(late) });
      reminderDelay.observe(Math.max(0, lateSeconds));
    },
    onClaimFailed: () => reminderClaimFailures.inc(),
  };

  const authHooks: AuthHooks = {
    onAuthEvent: (type) => authEvents.inc({ type }),
  };

  const httpMiddleware: RequestHandler = (req, res, next) => {
    res.on('finish', () => {
      const route = req.route?.path
        ? `${req.baseUrl}${String(req.route.path)}`
        : res.statusCode === 404
          ? 'not_found'
          : req.path.startsWith('/api/')
            ? 'api_other'
            : 'static';
      httpRequests.inc({ route, status: String(res.statusCode) });
    });
    next();
  };

  return {
    registry,
    gatewayHooks,
    chatHooks,
    reminderHooks,
    authHooks,
    httpMiddleware,
    route(token) {
      const expected = token ? Buffer.from(token) : undefined;
      return async (req, res, next) => {
        if (expected) {
          const given = Buffer.from(bearerToken(req.get('authorization')) ?? '');
          if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
            next(appError(ErrorCode.UNAUTHENTICATED, { message: 'A metrics token is required' }));
            return;
          }
        }
        res.setHeader('Content-Type', registry.contentType);
        res.setHeader('Cache-Control', 'no-store');
        res.end(await registry.metrics());
      };
    },
    countBroadcast: () => broadcasts.inc(),
    countRestRateLimited() {
      limited++;
      rateLimited.inc({ scope: 'rest' });
    },
    watchRedis(isUp) {
      redisIsUp = isUp;
    },
    live() {
      const q = recent.quantiles();
      const since = Date.now() - 5_000;
      while (tokenTimes.length && tokenTimes[0]!.at < since) tokenTimes.shift();
      const tokens = tokenTimes.reduce((sum, t) => sum + t.n, 0);
      return {
        sockets,
        users: users.size,
        eventsPerSecond: q.perSecond,
        eventP50Ms: q.p50,
        eventP99Ms: q.p99,
        handshakeFailures: failures,
        rateLimited: limited,
        activeStreams: active,
        outputTokensPerSecond: round(tokens / 5),
        cacheReadTokens: cacheRead,
        promptTokens: promptTotal,
        cacheHitRatio: cacheHitRatio(cacheRead, promptTotal),
        rssBytes: process.memoryUsage.rss(),
        eventLoopLagMs: lagMs(),
      };
    },
    stop() {
      lag.disable();
    },
  };
}
