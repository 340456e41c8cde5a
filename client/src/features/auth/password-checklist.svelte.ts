/** The live password rules of AUTH-1 for one password field: sign-up, password change and reset. */
import type { WireError } from '$shared/errors';
import { failedPasswordRules, nistLengthMessage, passwordRuleMessages, type PasswordPolicyName, type PasswordRule } from '$shared/password-policy';

const ruleOrder: PasswordRule[] = ['length', 'upper', 'lower', 'digit', 'special'];

export interface RuleState {
  rule: PasswordRule;
  text: string;
  met: boolean;
}

export class PasswordChecklist {
  /** `seed` unless the server's answer shows it runs the `nist` policy (the contract does not say which). */
  #policy = $state<PasswordPolicyName>('seed');
  #failed = $derived.by(() => failedPasswordRules(this.password(), this.#policy));

  constructor(private readonly password: () => string) {}

  /** Each rule with whether the password meets it, for the live checklist. */
  get rules(): RuleState[] {
    const rules = this.#policy === 'nist' ? (['length'] as PasswordRule[]) : ruleOrder;
    return rules.map((rule) => ({
      rule,
      text: rule === 'length' && this.#policy === 'nist' ? nistLengthMessage : passwordRuleMessages[rule],
      met: !this.#failed.includes(rule),
    }));
  }
  get ok(): boolean {
    return this.#failed.length === 0;
  }

  /** Learns the server's policy from its refusal of a password. */
  learn(error: WireError): void {
    if (error.code === 'WEAK_PASSWORD' && error.message === nistLengthMessage) this.#policy = 'nist';
  }
}
