/**
 * The signed-in session. The access token lives in memory only; the HttpOnly
 * refresh cookie restores it on load and renews it before expiry. Tabs
 * coordinate: one refreshes at a time (Web Locks) and shares the new token
 * (BroadcastChannel); a logout in one tab signs out all of them.
 */
import type { UserView } from '$shared/schemas/auth';
import type { SessionReady } from '$shared/schemas/account';
import type { WireError } from '$shared/errors';
import type { Api, ApiResult } from './api';
import type { AuthResult } from '$shared/schemas/auth';

export type SessionStatus = 'loading' | 'anonymous' | 'authenticated';
/** Why the user was signed out, shown on the login screen. */
export type SignOutReason = 'logout' | 'revoked' | 'expired' | 'deleted' | 'password' | 'mfa';

type TabMessage =
  | { type: 'token'; accessToken: string; expiresAt: string; user?: UserView }
  | { type: 'logout'; reason: SignOutReason };

const lockName = 'sam-refresh';
/**
 * Set while this browser has signed in, so that a fresh visitor's page does not
 * send a refresh that can only fail. Not a secret: the token is in the HttpOnly cookie.
 */
const hintKey = 'sam-signed-in';
const channelName = 'sam-session';
/**
 * When this browser last refreshed (ms since epoch; not a secret). A tab that
 * gets the lock right after another tab's refresh waits for the shared token
 * instead of refreshing again: the lock and the BroadcastChannel message are
 * delivered independently, so the message can come a moment after the lock.
 */
const lastRefreshKey = 'sam-last-refresh';
const SHARED_TOKEN_WAIT_MS = 600;

/**
 * Runs `work` holding the cross-tab refresh lock. `contended` tells it that another tab held the lock
 * when this one asked: that tab has most likely just refreshed, and its token may still be on the way
 * (the lock, the BroadcastChannel message and localStorage reach the other tabs independently).
 */
async function withLock<T>(work: (contended: boolean) => Promise<T>): Promise<T> {
  const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
  if (!locks) return work(false);
  const first = await locks.request(lockName, { ifAvailable: true }, async (lock) => (lock ? { value: await work(false) } : null));
  if (first) return first.value;
  return locks.request(lockName, () => work(true));
}

export class Session {
  #status = $state<SessionStatus>('loading');
  #user = $state.raw<UserView | null>(null);
  #sessionId = $state<string | null>(null);
  #signOutReason = $state<SignOutReason | null>(null);

  #token: string | null = null;
  /** ms since epoch, server clock */
  #expiresAt = 0;
  /** ms the current token lived for when adopted */
  #lifetime = 0;
  /** server clock minus this clock, from session:ready */
  #skewMs = 0;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #refreshing: Promise<boolean> | null = null;
  #channel: BroadcastChannel | null = null;
  #tokenListeners = new Set<(token: string) => void>();
  #statusListeners = new Set<(status: SessionStatus) => void>();
  #beforeLogout = new Set<() => Promise<void>>();

  constructor(private readonly api: Api) {
    if (typeof BroadcastChannel !== 'undefined') {
      this.#channel = new BroadcastChannel(channelName);
      this.#channel.onmessage = (e: MessageEvent<TabMessage>) => this.#onTabMessage(e.data);
    }
  }

  get status(): SessionStatus {
    return this.#status;
  }
  get user(): UserView | null {
    return this.#user;
  }
  get sessionId(): string | null {
    return this.#sessionId;
  }
  get signOutReason(): SignOutReason | null {
    return this.#signOutReason;
  }
  /** Now on the server's clock (ms since epoch), as the last `session:ready` told it: for times the server stamped. */
  serverNow(): number {
    return Date.now() + this.#skewMs;
  }
  /** The current access token, for the socket handshake and REST logout. Never stored. */
  get token(): string | null {
    return this.#token;
  }

  /** Called with every new access token (this tab's refresh or another tab's). */
  onToken(listener: (token: string) => void): () => void {
    this.#tokenListeners.add(listener);
    return () => this.#tokenListeners.delete(listener);
  }
  onStatus(listener: (status: SessionStatus) => void): () => void {
    this.#statusListeners.add(listener);
    return () => this.#statusListeners.delete(listener);
  }
  /** Work a logout waits for while the session still lives (the socket is up), such as dropping a push subscription. */
  onBeforeLogout(listener: () => Promise<void>): () => void {
    this.#beforeLogout.add(listener);
    return () => this.#beforeLogout.delete(listener);
  }

  /** On page load: the refresh cookie, if any, gives this tab a token. */
  async restore(): Promise<void> {
    if (!readHint()) {
      this.#setStatus('anonymous');
      return;
    }
    const ok = await this.refresh({ force: true });
    if (!ok && this.#status === 'loading') this.#setStatus('anonymous');
  }

  async login(email: string, password: string): Promise<ApiResult<AuthResult>> {
    const res = await this.api.login({ email, password });
    if (res.ok) this.#signedIn(res.data);
    return res;
  }

  /** Finishes a login that answered `MFA_REQUIRED`, with its challenge and a TOTP or recovery code. */
  async loginMfa(challenge: string, code: string): Promise<ApiResult<AuthResult>> {
    const res = await this.api.loginMfa({ challenge, code });
    if (res.ok) this.#signedIn(res.data);
    return res;
  }

  async signup(fields: { email: string; password: string; fullName?: string; timezone?: string }): Promise<ApiResult<AuthResult>> {
    const res = await this.api.signup(fields);
    if (res.ok) this.#signedIn(res.data);
    return res;
  }

  /**
   * Gets a new access token unless one that lives long enough is already here.
   * `force` refreshes even so (the server refused the token). Resolves false when
   * there is no session any more, or the server could not be reached.
   */
  refresh(options: { force?: boolean } = {}): Promise<boolean> {
    if (this.#refreshing) return this.#refreshing;
    const before = this.#token;
    this.#refreshing = withLock(async (contended) => {
      const fresh = () => this.#token !== null && this.#timeLeft() > this.#margin();
      // Another tab may have refreshed (and shared its token) while this one waited.
      if (fresh() && (this.#token !== before || !options.force)) return true;
      // A refresh by another tab for this same expiry: its token is on the way.
      if (this.#token === before && (contended || Date.now() - readNumber(lastRefreshKey) < this.#margin())) {
        await this.#nextToken(Math.min(SHARED_TOKEN_WAIT_MS, this.#margin() / 3));
        if (this.#token !== before && fresh()) return true;
      }
      const res = await this.api.refresh();
      if (res.ok) {
        writeNumber(lastRefreshKey, Date.now());
        this.#adopt(res.data.accessToken, res.data.expiresAt);
        this.#post({ type: 'token', accessToken: res.data.accessToken, expiresAt: res.data.expiresAt });
        return true;
      }
      if (res.status === 401 || res.status === 403) {
        if (this.#status !== 'anonymous') this.end(res.error.code === 'TOKEN_REVOKED' ? 'revoked' : 'expired', { announce: false });
        return false;
      }
      // Unreachable or busy: keep the token we have and try again soon.
      if (this.#status === 'authenticated') this.#schedule(Math.min(10_000, Math.max(1_000, this.#timeLeft() / 2)));
      return false;
    }).finally(() => {
      this.#refreshing = null;
    });
    return this.#refreshing;
  }

  /** Resolves true once this tab holds a token that is not about to expire. */
  async ensureFreshToken(): Promise<boolean> {
    if (this.#token !== null && this.#timeLeft() > 2_000) return true;
    return this.refresh({ force: true });
  }

  async logout(everywhere = false): Promise<WireError | null> {
    // The server ends a session with an expired token and the cookie too (AUTH-7), but a fresh token is surer.
    await this.ensureFreshToken();
    await Promise.allSettled([...this.#beforeLogout].map((listener) => listener()));
    const token = this.#token;
    const res = everywhere ? await this.api.logoutAll(token) : await this.api.logout(token);
    if (!res.ok && res.status === 0) return res.error;
    this.end('logout');
    return null;
  }

  /** The server's view on connect: the user, and its clock to schedule refreshes by. */
  ready(data: SessionReady): void {
    this.#user = data.user;
    this.#sessionId = data.sessionId;
    this.#skewMs = Date.parse(data.serverTime) - Date.now();
    this.#schedule(this.#timeLeft() - this.#margin());
  }

  setUser(user: UserView): void {
    this.#user = user;
  }

  /** Signs this tab out; unless `announce` is false, every other tab too. */
  end(reason: SignOutReason, options: { announce?: boolean } = {}): void {
    if (options.announce !== false) this.#post({ type: 'logout', reason });
    clearTimeout(this.#refreshTimer);
    this.#token = null;
    this.#expiresAt = 0;
    writeHint(false);
    this.#user = null;
    this.#sessionId = null;
    this.#signOutReason = reason === 'logout' && this.#status === 'loading' ? null : reason;
    this.#setStatus('anonymous');
  }

  clearSignOutReason(): void {
    this.#signOutReason = null;
  }

  #signedIn(result: AuthResult): void {
    this.#user = result.user;
    this.#adopt(result.accessToken, result.expiresAt);
    this.#post({ type: 'token', accessToken: result.accessToken, expiresAt: result.expiresAt, user: result.user });
  }

  #adopt(token: string, expiresAt: string): void {
    this.#token = token;
    this.#expiresAt = Date.parse(expiresAt);
    this.#lifetime = Math.max(1_000, this.#timeLeft());
    this.#signOutReason = null;
    writeHint(true);
    this.#schedule(this.#timeLeft() - this.#margin());
    this.#setStatus('authenticated');
    for (const listener of this.#tokenListeners) listener(token);
  }

  #onTabMessage(message: TabMessage): void {
    if (message.type === 'logout') {
      if (this.#status !== 'anonymous') this.end(message.reason, { announce: false });
      return;
    }
    if (message.type === 'token') {
      const expiresAt = Date.parse(message.expiresAt);
      // Only a newer token; an older one (a slower tab) would shorten this tab's life.
      if (this.#token !== null && expiresAt <= this.#expiresAt) return;
      if (message.user) this.#user = message.user;
      this.#adopt(message.accessToken, message.expiresAt);
    }
  }

  /** Resolves when a new token is adopted (from another tab), or after `ms`. */
  #nextToken(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        off();
        resolve();
      };
      const timer = setTimeout(done, ms);
      const off = this.onToken(done);
    });
  }

  #post(message: TabMessage): void {
    this.#channel?.postMessage(message);
  }

  #timeLeft(): number {
    return this.#expiresAt - (Date.now() + this.#skewMs);
  }

  /** Refresh this long before expiry: a minute, or a quarter of a short token's life. */
  #margin(): number {
    return Math.min(60_000, this.#lifetime / 4);
  }

  #schedule(inMs: number): void {
    clearTimeout(this.#refreshTimer);
    if (this.#token === null) return;
    this.#refreshTimer = setTimeout(() => void this.refresh(), Math.max(250, inMs));
  }

  #setStatus(status: SessionStatus): void {
    if (this.#status === status) return;
    this.#status = status;
    for (const listener of this.#statusListeners) listener(status);
  }
}

function readHint(): boolean {
  try {
    return localStorage.getItem(hintKey) === '1';
  } catch {
    return true; // storage blocked: just try the cookie
  }
}

function writeHint(on: boolean): void {
  try {
    if (on) localStorage.setItem(hintKey, '1');
    else localStorage.removeItem(hintKey);
  } catch {
    /* storage blocked */
  }
}

function readNumber(key: string): number {
  try {
    return Number(localStorage.getItem(key) ?? 0) || 0;
  } catch {
    return 0;
  }
}

function writeNumber(key: string, value: number): void {
  try {
    localStorage.setItem(key, String(value));
  } catch {
    // storage unavailable (private mode): tabs may then refresh twice, which the server allows
  }
}
