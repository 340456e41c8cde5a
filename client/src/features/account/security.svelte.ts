/**
 * Account security (PROTOCOL §3b, §6.3b): two-factor enrolment and its
 * recovery codes, password change, the user's security log, and the notices
 * of sign-ins from a new device.
 */
import type { WireError } from '$shared/errors';
import type { SecurityLogType } from '$shared/constants';
import type { MfaSetup, NewDeviceSession, SecurityLogEntry } from '$shared/schemas/security';
import type { Connection } from '../../lib/connection.svelte';
import type { Session } from '../../lib/session.svelte';
import type { Toasts } from '../../lib/toasts.svelte';
import { describeError } from '../../lib/errors';

/** Entries per page of the security log. */
const logPageSize = 20;

/** Each kind of security-log entry in words. */
export const securityLogWords: Record<SecurityLogType, string> = {
  login_succeeded: 'Signed in',
  login_failed: 'Wrong password or code',
  account_locked: 'Locked after failed sign-ins',
  mfa_enabled: 'Two-factor turned on',
  mfa_disabled: 'Two-factor turned off',
  recovery_codes_regenerated: 'New recovery codes made',
  recovery_code_used: 'Recovery code used',
  password_changed: 'Password changed',
  password_reset_requested: 'Password reset link requested',
  password_reset: 'Password reset by email link',
  session_revoked: 'Session signed out',
  refresh_reuse_detected: 'Stolen sign-in suspected: session ended',
  admin_granted: 'Made an operator',
  admin_revoked: 'No longer an operator',
};

/** Where a sign-in came from, for people: an IPv4 address as written, not in its IPv6-mapped form (`::ffff:…`). */
export function describeIp(ip: string | null): string {
  if (!ip) return 'an unknown address';
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(ip) ? ip.slice(7) : ip;
}

/** A sentence for a refused password-and-code confirmation. */
export function describeConfirmError(error: WireError): string {
  return error.code === 'INVALID_CREDENTIALS' ? 'The password or the code is not right.' : describeError(error);
}

export class SecurityStore {
  #setup = $state.raw<MfaSetup | null>(null);
  /** recovery codes just made, shown once until the user says they saved them */
  #recoveryCodes = $state.raw<string[] | null>(null);
  #log = $state.raw<SecurityLogEntry[]>([]);
  #logState = $state<'idle' | 'loading' | 'ready' | 'error'>('idle');
  #hasMore = $state(false);
  #notices = $state.raw<NewDeviceSession[]>([]);
  #busy = $state<string | null>(null);

  constructor(
    private readonly connection: Connection,
    private readonly session: Session,
    private readonly toasts: Toasts,
  ) {
    connection.on('security:new-device', ({ session: s }) => {
      if (s.id === this.session.sessionId || this.#notices.some((n) => n.id === s.id)) return;
      this.#notices = [...this.#notices, s];
    });
  }

  get setup(): MfaSetup | null {
    return this.#setup;
  }
  get recoveryCodes(): string[] | null {
    return this.#recoveryCodes;
  }
  get log(): SecurityLogEntry[] {
    return this.#log;
  }
  get logState(): string {
    return this.#logState;
  }
  get hasMore(): boolean {
    return this.#hasMore;
  }
  get notices(): NewDeviceSession[] {
    return this.#notices;
  }
  /** which action is running, to disable its button */
  get busy(): string | null {
    return this.#busy;
  }

  /** A new pending secret; it replaces any earlier one and counts only once enabled. */
  async startSetup(): Promise<WireError | null> {
    return this.#run('setup', async () => {
      const res = await this.connection.request('mfa:setup', {});
      if (!res.ok) return res.error;
      this.#setup = res.data;
      return null;
    });
  }

  cancelSetup(): void {
    this.#setup = null;
  }

  async enable(password: string, code: string): Promise<WireError | null> {
    return this.#confirmed('enable', async () => {
      const res = await this.connection.request('mfa:enable', { password, code });
      if (!res.ok) return res.error;
      this.#setup = null;
      this.#recoveryCodes = res.data.recoveryCodes;
      this.#setMfa(true);
      return null;
    });
  }

  async disable(password: string, code: string): Promise<WireError | null> {
    return this.#confirmed('disable', async () => {
      const res = await this.connection.request('mfa:disable', { password, code });
      if (!res.ok) return res.error;
      this.#setMfa(false);
      this.toasts.show('Two-factor sign-in is off. Every other session was signed out.', 'success');
      return null;
    });
  }

  async regenerateCodes(password: string, code: string): Promise<WireError | null> {
    return this.#confirmed('regenerate', async () => {
      const res = await this.connection.request('mfa:recovery-codes', { password, code });
      if (!res.ok) return res.error;
      this.#recoveryCodes = res.data.recoveryCodes;
      return null;
    });
  }

  /** The user saved the codes: they are not shown again. */
  closeRecoveryCodes(): void {
    this.#recoveryCodes = null;
  }

  async changePassword(currentPassword: string, newPassword: string): Promise<WireError | null> {
    return this.#confirmed('password', async () => {
      const res = await this.connection.request('user:password', { currentPassword, newPassword }, 30_000);
      return res.ok ? null : res.error;
    });
  }

  /** The newest page of the log, or (`more`) the page after the entries shown. */
  async loadLog(more = false): Promise<void> {
    const before = more ? this.#log.at(-1)?.at : undefined;
    this.#logState = 'loading';
    const res = await this.connection.request('security:log', before ? { before, limit: logPageSize } : { limit: logPageSize });
    if (!res.ok) {
      this.#logState = 'error';
      this.toasts.show(`Could not read the security log: ${describeError(res.error)}`, 'error');
      return;
    }
    this.#log = more ? [...this.#log, ...res.data.events] : res.data.events;
    this.#hasMore = res.data.hasMore;
    this.#logState = 'ready';
  }

  dismissNotice(id: string): void {
    this.#notices = this.#notices.filter((n) => n.id !== id);
  }

  /** Signed out: nothing of the account stays in memory, least of all a secret or recovery codes. */
  reset(): void {
    this.#setup = null;
    this.#recoveryCodes = null;
    this.#log = [];
    this.#logState = 'idle';
    this.#hasMore = false;
    this.#notices = [];
  }

  #setMfa(mfaEnabled: boolean): void {
    const user = this.session.user;
    if (user) this.session.setUser({ ...user, mfaEnabled });
  }

  /** Runs an action that checks the password or a code; the log then has a new entry to show. */
  async #confirmed(name: string, work: () => Promise<WireError | null>): Promise<WireError | null> {
    const err = await this.#run(name, work);
    if (this.#logState !== 'idle') void this.loadLog();
    return err;
  }

  async #run<T>(name: string, work: () => Promise<T>): Promise<T> {
    this.#busy = name;
    try {
      return await work();
    } finally {
      this.#busy = null;
    }
  }
}
