/**
 * The sign-up / log-in form: fields, the live password rules, the second step
 * of a login with two-factor on (PROTOCOL §3b), the forgotten-password request,
 * and the server's answers.
 */
import type { WireError } from '$shared/errors';
import type { Api } from '../../lib/api';
import type { Session } from '../../lib/session.svelte';
import { describeError } from '../../lib/errors';
import { PasswordChecklist } from './password-checklist.svelte';

export type AuthMode = 'login' | 'signup' | 'forgot';

export class AuthForm {
  mode = $state<AuthMode>('login');
  email = $state('');
  password = $state('');
  fullName = $state('');
  /** the second step's TOTP or recovery code */
  code = $state('');
  /** the second step asks for a recovery code instead of the app's code */
  useRecovery = $state(false);
  readonly checklist = new PasswordChecklist(() => this.password);
  #error = $state.raw<WireError | null>(null);
  #errorText = $state<string | null>(null);
  /** what the server did that is not an error (a reset link sent) */
  #notice = $state<string | null>(null);
  #busy = $state(false);
  /** the `MFA_REQUIRED` answer's challenge while the second step shows */
  #challenge = $state<string | null>(null);

  constructor(
    private readonly session: Session,
    private readonly api: Pick<Api, 'forgotPassword'>,
  ) {}

  get busy(): boolean {
    return this.#busy;
  }
  get error(): WireError | null {
    return this.#error;
  }
  get errorText(): string | null {
    return this.#errorText;
  }
  get notice(): string | null {
    return this.#notice;
  }
  /** `code` while a login waits for its second factor. */
  get step(): 'password' | 'code' {
    return this.#challenge === null ? 'password' : 'code';
  }
  get canSubmit(): boolean {
    if (this.#busy) return false;
    if (this.mode === 'forgot') return this.email.trim() !== '';
    if (this.step === 'code') return this.code.trim() !== '';
    if (this.email.trim() === '' || this.password === '') return false;
    return this.mode === 'login' || this.checklist.ok;
  }

  switchTo(mode: AuthMode): void {
    this.mode = mode;
    this.#challenge = null;
    this.code = '';
    this.useRecovery = false;
    this.#notice = null;
    this.#fail(null);
  }

  toggleRecovery(): void {
    this.useRecovery = !this.useRecovery;
    this.code = '';
    this.#fail(null);
  }

  async submit(): Promise<void> {
    if (!this.canSubmit) return;
    this.#busy = true;
    this.#fail(null);
    this.#notice = null;
    try {
      if (this.mode === 'forgot') await this.#forgot();
      else if (this.step === 'code') await this.#secondFactor(this.#challenge!);
      else await this.#first();
    } finally {
      this.#busy = false;
    }
  }

  async #first(): Promise<void> {
    const email = this.email.trim();
    const res =
      this.mode === 'login'
        ? await this.session.login(email, this.password)
        : await this.session.signup({
            email,
            password: this.password,
            fullName: this.fullName.trim() || undefined,
            timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
          });
    if (res.ok) {
      this.password = '';
      return;
    }
    const challenge = res.error.details?.challenge;
    if (res.error.code === 'MFA_REQUIRED' && typeof challenge === 'string') {
      // The password was right; it is not needed again unless the challenge expires.
      this.password = '';
      this.code = '';
      this.useRecovery = false;
      this.#challenge = challenge;
      return;
    }
    this.checklist.learn(res.error);
    this.#fail(res.error);
  }

  async #secondFactor(challenge: string): Promise<void> {
    // An app's code is often shown as "123 456"; a recovery code is sent as typed.
    const code = this.useRecovery ? this.code.trim() : this.code.replace(/\s+/g, '');
    const res = await this.session.loginMfa(challenge, code);
    if (res.ok) {
      this.#challenge = null;
      this.code = '';
      return;
    }
    if (res.error.code === 'INVALID_CREDENTIALS') {
      this.code = '';
      this.#fail(res.error, this.useRecovery ? 'That recovery code is not right, or it was used before.' : 'That code is not right. Check your app and enter the newest code.');
    } else if (res.error.code === 'UNAUTHENTICATED') {
      this.#challenge = null;
      this.code = '';
      this.#fail(res.error, 'That sign-in expired. Start again with your password.');
    } else {
      this.#fail(res.error);
    }
  }

  async #forgot(): Promise<void> {
    const email = this.email.trim();
    const res = await this.api.forgotPassword({ email });
    if (res.ok) this.#notice = `If an account exists for ${email}, we sent it a link to choose a new password. The link works for 30 minutes.`;
    else this.#fail(res.error);
  }

  #fail(error: WireError | null, text?: string): void {
    this.#error = error;
    this.#errorText = error ? (text ?? describeError(error)) : null;
  }
}
