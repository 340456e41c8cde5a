/** The sign-up / log-in form: fields, the live password rules, and the server's answer. */
import type { WireError } from '$shared/errors';
import {
  failedPasswordRules,
  nistLengthMessage,
  passwordRuleMessages,
  type PasswordPolicyName,
  type PasswordRule,
} from '$shared/password-policy';
import type { Session } from '../../lib/session.svelte';
import { describeError } from '../../lib/errors';

export type AuthMode = 'login' | 'signup';

const ruleOrder: PasswordRule[] = ['length', 'upper', 'lower', 'digit', 'special'];

export class AuthForm {
  mode = $state<AuthMode>('login');
  email = $state('');
  password = $state('');
  fullName = $state('');
  #error = $state.raw<WireError | null>(null);
  #busy = $state(false);
  /** `seed` unless the server's answer shows it runs the `nist` policy (the contract does not say which). */
  #policy = $state<PasswordPolicyName>('seed');

  #failed = $derived(failedPasswordRules(this.password, this.#policy));

  constructor(private readonly session: Session) {}

  get busy(): boolean {
    return this.#busy;
  }
  get error(): WireError | null {
    return this.#error;
  }
  get errorText(): string | null {
    return this.#error ? describeError(this.#error) : null;
  }
  /** Each rule with whether the password meets it, for the live checklist. */
  get rules(): { rule: PasswordRule; text: string; met: boolean }[] {
    const rules = this.#policy === 'nist' ? (['length'] as PasswordRule[]) : ruleOrder;
    return rules.map((rule) => ({
      rule,
      text: rule === 'length' && this.#policy === 'nist' ? nistLengthMessage : passwordRuleMessages[rule],
      met: !this.#failed.includes(rule),
    }));
  }
  get passwordOk(): boolean {
    return this.#failed.length === 0;
  }
  get canSubmit(): boolean {
    if (this.#busy || this.email.trim() === '' || this.password === '') return false;
    return this.mode === 'login' || this.passwordOk;
  }

  switchTo(mode: AuthMode): void {
    this.mode = mode;
    this.#error = null;
  }

  async submit(): Promise<void> {
    if (!this.canSubmit) return;
    this.#busy = true;
    this.#error = null;
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
    this.#busy = false;
    if (!res.ok) {
      if (res.error.code === 'WEAK_PASSWORD' && res.error.message === nistLengthMessage) this.#policy = 'nist';
      this.#error = res.error;
    } else {
      this.password = '';
    }
  }
}
