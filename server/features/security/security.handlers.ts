/** Socket handlers of account security (PROTOCOL §6.3b): password change, two-factor sign-in, the security log. */
import { appError, ErrorCode } from '../../errors.js';
import { defineHandler, type EventsOf, type HandlersOf } from '../../realtime/define-handler.js';

const notYet = () => Promise.reject(appError(ErrorCode.UNAVAILABLE));

export function securityHandlers() {
  return {
    'user:password': defineHandler('user:password', notYet),
    'mfa:setup': defineHandler('mfa:setup', notYet),
    'mfa:enable': defineHandler('mfa:enable', notYet),
    'mfa:disable': defineHandler('mfa:disable', notYet),
    'mfa:recovery-codes': defineHandler('mfa:recovery-codes', notYet),
    'security:log': defineHandler('security:log', notYet),
  } satisfies HandlersOf<EventsOf<'mfa' | 'security'> | 'user:password'>;
}
