/**
 * The page a password-reset email links to (AUTH-16, AUTH-17): the token comes
 * in the URL fragment (`/reset-password#token=…`), which never reaches a server
 * log, and is taken out of the address bar as soon as it is read.
 */
import { resetPasswordPath } from '$shared/constants';
import type { Api } from '../../lib/api';
import { describeError } from '../../lib/errors';
import { PasswordChecklist } from './password-checklist.svelte';

/**
 * On the reset page: the token of its fragment ('' when the link has none), and the fragment removed from the
 * address bar and history. Elsewhere: null.
 */
export function takeResetToken(): string | null {
  if (location.pathname.replace(/\/+$/, '') !== resetPasswordPath) return null;
  const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? '';
  history.replaceState(null, '', resetPasswordPath);
  return token;
}

export type ResetState = 'form' | 'done' | 'expired';

export class ResetPasswordForm {
  password = $state('');
  repeat = $state('');
  readonly checklist = new PasswordChecklist(() => this.password);
  #state = $state<ResetState>('form');
  #error = $state<string | null>(null);
  #busy = $state(false);

  constructor(
    private readonly token: string,
    private readonly api: Pick<Api, 'resetPassword'>,
  ) {
    if (token === '') this.#state = 'expired';
  }

  get state(): ResetState {
    return this.#state;
  }
  get error(): string | null {
    return this.#error;
  }
  get busy(): boolean {
    return this.#busy;
  }
  get canSubmit(): boolean {
    return !this.#busy && this.checklist.ok && this.repeat === this.password;
  }

  async submit(): Promise<void> {
    if (!this.canSubmit) return;
    this.#busy = true;
    this.#error = null;
    const res = await this.api.resetPassword({ token: this.token, password: this.password });
    this.#busy = false;
    if (res.ok) {
      this.password = this.repeat = '';
      this.#state = 'done';
    } else if (res.error.code === 'UNAUTHENTICATED') {
      this.#state = 'expired';
    } else {
      this.checklist.learn(res.error);
      this.#error = describeError(res.error);
    }
  }
}
