/**
 * AUTH-18: the durable security log in PostgreSQL, beside the JSON-lines
 * security events on stdout (PROTOCOL §7). Writes leave the caller's path:
 * `record` returns at once and the insert follows (its failure is logged), so
 * no request waits on it; `flush` waits for those in flight (shutdown, tests).
 * A sign-in also tells the user's other tabs when it comes from a device and
 * network the account has not used before (§6.3b).
 */
import { backgroundWork } from '../../background.js';
import type { SecurityLogType } from '../../../shared/constants.js';
import type { NewDeviceSession } from '../../../shared/schemas/security.js';
import type { Logger } from '../../logger.js';
import { authEventTypes, type AuthEventType, type AuthHooks } from '../../hooks.js';
import { deviceName, networkOf } from './device.js';
import type { SecurityRepository } from './security.repository.js';

export interface SecurityEntry {
  userId?: string | null;
  email?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  details?: Record<string, unknown>;
}

export interface SignIn {
  userId: string;
  sessionId: string;
  createdAt: Date;
  ip: string | undefined;
  userAgent: string | undefined;
  /** the account's first session (signup): its device becomes known, nobody is told */
  first?: boolean;
  details?: Record<string, unknown>;
}

export interface SecurityLog {
  record(type: SecurityLogType, entry: SecurityEntry): void;
  /** `login_succeeded`, and the new-device notice when it applies. */
  signedIn(signIn: SignIn): void;
  /** Resolves when every write begun so far has ended. */
  flush(): Promise<void>;
}

export function createSecurityLog(deps: {
  repository: SecurityRepository;
  logger: Logger;
  onNewDevice: (userId: string, session: NewDeviceSession) => void;
  /** counts the sign-in events among those recorded (sam_auth_events_total) */
  hooks: AuthHooks;
}): SecurityLog {
  const { repository, logger } = deps;
  const counted = new Set<string>(authEventTypes);
  const count = (type: SecurityLogType) => {
    if (counted.has(type)) deps.hooks.onAuthEvent(type as AuthEventType);
  };
  const background = backgroundWork();
  /**
   * Times strictly increase within a node, so that two entries of one flow (a failure and the lock it
   * causes) never share the millisecond that `security:log` pages by (`before`).
   */
  let lastMs = 0;
  const stamp = (at: Date) => {
    lastMs = Math.max(at.getTime(), lastMs + 1);
    return new Date(lastMs);
  };

  const track = (work: Promise<void>, type: SecurityLogType) => {
    void background.add(work.catch((err: unknown) => logger.error({ err, securityType: type }, 'security log write failed')));
  };

  const row = (type: SecurityLogType, entry: SecurityEntry, at = new Date()) => {
    const userAgent = entry.userAgent?.slice(0, 512) ?? null;
    return {
      at: stamp(at),
      userId: entry.userId ?? null,
      email: entry.email ?? null,
      type,
      ip: entry.ip?.slice(0, 64) ?? null,
      userAgent,
      device: deviceName(userAgent),
      network: networkOf(entry.ip),
      details: entry.details ?? null,
    };
  };

  return {
    record(type, entry) {
      count(type);
      track(repository.insertEvents([row(type, entry)]), type);
    },

    signedIn(signIn) {
      // a signup is counted as one, not as a sign-in
      if (!signIn.first) count('login_succeeded');
      const event = row('login_succeeded', { userId: signIn.userId, ip: signIn.ip, userAgent: signIn.userAgent, details: signIn.details }, signIn.createdAt);
      track(
        (async () => {
          const seen = signIn.first ? undefined : await repository.signInsFrom(signIn.userId, event.device, event.network, event.at);
          await repository.insertEvents([event]);
          if (seen?.any && !seen.same) {
            deps.onNewDevice(signIn.userId, {
              id: signIn.sessionId,
              createdAt: signIn.createdAt.toISOString(),
              userAgent: event.userAgent,
              device: event.device,
              ip: event.ip,
            });
          }
        })(),
        'login_succeeded',
      );
    },

    flush: () => background.drain(),
  };
}
