/**
 * Web Push of reminders (issue 20, PROTOCOL §2 `VAPID_*`): a fired reminder
 * also reaches the user's browsers that have no tab open, through their push
 * services, encrypted for each browser (RFC 8291, aes128gcm) and signed with
 * the server's VAPID key (RFC 8292), by the `web-push` library.
 *
 * Without VAPID configuration every method is a no-op and `publicKey()` is
 * null, so clients do not offer push at all.
 */
import { ECDH } from 'node:crypto';
import type https from 'node:https';
import { backgroundWork } from '../../background.js';
import type { Config } from '../../config.js';
import { appError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { PushSubscribe, Reminder } from '../../../shared/schemas/reminders.js';
import type { PushRepository, PushSubscriptionRow } from './push.repository.js';

/** A reminder is worth showing for an hour; a phone offline longer gets it from `reminder:list` instead. */
export const PUSH_TTL_SECONDS = 3600;
/** Subscriptions kept per user (browsers, profiles, devices); a new one beyond it evicts the oldest. */
export const MAX_PUSH_SUBSCRIPTIONS_PER_USER = 20;
/** Pushes in flight at once from this node, all users together: a burst of reminders queues instead of opening thousands of sockets. */
export const MAX_PUSHES_IN_FLIGHT = 16;
/** A push service that sends nothing for this long is given up on (socket idle timeout). */
const SEND_TIMEOUT_MS = 10_000;
/** Notifications show a short body; the payload must stay far below a push message's 4 KiB. */
const BODY_MAX_CHARS = 200;

export interface PushNotifierDeps {
  repository: PushRepository;
  config: Pick<Config, 'vapid'>;
  logger: Logger;
  /** the HTTPS agent of requests to push services (default: Node's global agent and CA store) */
  agent?: https.Agent;
}

/** What one `notify` did, per subscription. */
export interface PushOutcome {
  /** accepted by the push service */
  sent: number;
  /** the push service answered 404 or 410: the subscription was deleted */
  gone: number;
  /** refused otherwise, or not reached; logged */
  failed: number;
}

export interface PushNotifier {
  /** the VAPID public key (base64url) browsers subscribe with, or null when Web Push is off */
  publicKey(): string | null;
  /** Stores the browser's subscription for the user; an endpoint another user had becomes this user's. */
  subscribe(userId: string, sub: PushSubscribe, userAgent: string | undefined): Promise<void>;
  /** Deletes the user's own subscription with this endpoint (another user's stays). */
  unsubscribe(userId: string, endpoint: string): Promise<void>;
  /** Pushes the fired reminder to each of the user's subscriptions once. Never throws. */
  notify(userId: string, reminder: Reminder): Promise<PushOutcome>;
  /** Resolves when no push is in flight or queued (graceful shutdown). */
  drain(): Promise<void>;
}

const nothing: PushOutcome = { sent: 0, gone: 0, failed: 0 };

export function createPushNotifier({ repository, config, logger, agent }: PushNotifierDeps): PushNotifier {
  const vapid = config.vapid;
  if (!vapid) {
    return {
      publicKey: () => null,
      subscribe: async () => undefined,
      unsubscribe: async () => undefined,
      notify: async () => nothing,
      drain: async () => undefined,
    };
  }
  const vapidDetails = { subject: vapid.subject, publicKey: vapid.publicKey, privateKey: vapid.privateKey };
  // Loaded only by a node that pushes, and from its start, so the first push does not wait for it.
  const library = import('web-push').then((m) => m.default);
  library.catch(() => undefined);
  const slots = semaphore(MAX_PUSHES_IN_FLIGHT);
  const background = backgroundWork();

  type Result = 'sent' | 'gone' | 'failed';
  const send = async (userId: string, reminderId: string, sub: PushSubscriptionRow, payload: string): Promise<Result> => {
    const webpush = await library;
    const release = await slots.acquire();
    try {
      await webpush.sendNotification({ endpoint: sub.endpoint, keys: { p256dh: sub.p256dh, auth: sub.auth } }, payload, {
        vapidDetails,
        TTL: PUSH_TTL_SECONDS,
        urgency: 'high',
        contentEncoding: 'aes128gcm',
        timeout: SEND_TIMEOUT_MS,
        ...(agent ? { agent } : {}),
      });
      return 'sent';
    } catch (err) {
      // The endpoint's path is the subscription's capability: only the push service's origin is logged.
      const pushService = originOf(sub.endpoint);
      if (err instanceof webpush.WebPushError) {
        if (err.statusCode === 404 || err.statusCode === 410) {
          logger.info({ event: 'push', userId, reminderId, pushService, status: err.statusCode }, 'push subscription gone; deleted');
          return 'gone';
        }
        logger.warn({ event: 'push', userId, reminderId, pushService, status: err.statusCode }, 'push refused');
      } else {
        const e = err as { code?: unknown; message?: unknown };
        logger.warn({ event: 'push', userId, reminderId, pushService, code: e.code, error: String(e.message) }, 'push failed');
      }
      return 'failed';
    } finally {
      release();
    }
  };

  const notifyAll = async (userId: string, reminder: Reminder): Promise<PushOutcome> => {
    try {
      const subs = await repository.forUser(userId);
      if (subs.length === 0) return nothing;
      const payload = JSON.stringify({ title: 'Reminder', body: shorten(reminder.title), reminderId: reminder.id, taskId: reminder.taskId, url: '/' });
      const results = await Promise.all(subs.map((sub) => send(userId, reminder.id, sub, payload)));
      const ids = (wanted: Result) => subs.filter((_, i) => results[i] === wanted).map((s) => s.id);
      await Promise.all([repository.markSucceeded(ids('sent')), repository.removeGone(ids('gone'))]);
      const count = (wanted: Result) => results.filter((r) => r === wanted).length;
      return { sent: count('sent'), gone: count('gone'), failed: count('failed') };
    } catch (err) {
      // The database failed: the reminder itself was delivered to the tabs and stays in `reminder:list`.
      logger.warn({ event: 'push', userId, reminderId: reminder.id, err }, 'push not sent');
      return nothing;
    }
  };

  return {
    publicKey: () => vapid.publicKey,

    async subscribe(userId, sub, userAgent) {
      checkSubscription(sub);
      const { movedFrom } = await repository.upsert(
        userId,
        { endpoint: sub.endpoint, p256dh: canonical(sub.keys.p256dh), auth: canonical(sub.keys.auth), userAgent: userAgent?.slice(0, 512) ?? null },
        MAX_PUSH_SUBSCRIPTIONS_PER_USER,
      );
      if (movedFrom) logger.info({ event: 'push', userId, previousUserId: movedFrom, pushService: originOf(sub.endpoint) }, 'push subscription moved to another user');
    },

    async unsubscribe(userId, endpoint) {
      await repository.remove(userId, endpoint);
    },

    notify(userId, reminder) {
      return background.add(notifyAll(userId, reminder));
    },

    drain: () => background.drain(),
  };
}

/**
 * What the contract's schema cannot say: `web-push` speaks only HTTPS, and a
 * subscription whose keys are not a P-256 point and a 16-byte secret could
 * never be encrypted to.
 */
function checkSubscription(sub: PushSubscribe): void {
  const issues: { path: string; message: string }[] = [];
  if (!sub.endpoint.startsWith('https://')) issues.push({ path: 'endpoint', message: 'Must be an https URL' });
  if (Buffer.byteLength(sub.endpoint) > 2048) issues.push({ path: 'endpoint', message: 'Must be at most 2048 bytes' });
  if (!isBase64url(sub.keys.p256dh) || !isP256Point(Buffer.from(sub.keys.p256dh, 'base64url'))) {
    issues.push({ path: 'keys.p256dh', message: 'Must be an uncompressed P-256 public key in base64url' });
  }
  if (!isBase64url(sub.keys.auth) || Buffer.from(sub.keys.auth, 'base64url').length !== 16) {
    issues.push({ path: 'keys.auth', message: 'Must be 16 bytes in base64url' });
  }
  if (issues.length > 0) throw appError(ErrorCode.VALIDATION, { issues });
}

const isBase64url = (s: string) => /^[A-Za-z0-9_-]+={0,2}$/.test(s);
/** base64url without padding, as browsers give it */
const canonical = (s: string) => Buffer.from(s, 'base64url').toString('base64url');

function isP256Point(key: Buffer): boolean {
  if (key.length !== 65 || key[0] !== 0x04) return false;
  try {
    ECDH.convertKey(key, 'prime256v1');
    return true;
  } catch {
    return false;
  }
}

function originOf(endpoint: string): string {
  try {
    return new URL(endpoint).origin;
  } catch {
    return 'invalid';
  }
}

function shorten(title: string): string {
  const chars = Array.from(title);
  return chars.length <= BODY_MAX_CHARS ? title : `${chars.slice(0, BODY_MAX_CHARS - 1).join('')}…`;
}

/** At most `limit` holders at once; the others wait in order. */
function semaphore(limit: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else active--;
  };
  return {
    async acquire(): Promise<() => void> {
      if (active < limit) active++;
      else await new Promise<void>((resolve) => waiting.push(resolve));
      return release;
    },
  };
}
