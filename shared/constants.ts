/**
 * Constants of the wire contract with no dependency at all, so that the client
 * can import them without pulling zod into its bundle. The schemas build on them.
 */
export const authBasePath = '/api/v1/auth';
export const refreshCookieName = 'refresh_token';

export const taskStatuses = ['not_started', 'in_progress', 'waiting_on', 'completed', 'deleted'] as const;
/** The statuses a client may set directly; completing and deleting have their own events. */
export const openTaskStatuses = ['not_started', 'in_progress', 'waiting_on'] as const;
export const recurrenceTypes = ['daily', 'weekly', 'monthly', 'yearly'] as const;
export const taskViews = ['active', 'upcoming', 'waiting', 'completed', 'deleted'] as const;
export const intensityClasses = ['light', 'medium', 'heavy'] as const;
export const messageStatuses = ['complete', 'streaming', 'cancelled', 'error', 'interrupted'] as const;

/**
 * Why a session was revoked: the `reason` of `session:revoked` (RT-5), a
 * closed list. `session_revoked` is a user ending one of their sessions,
 * `admin_revoked` an admin's `ops:revoke-user` or an operator's `admin sign-out`.
 */
export const revocationReasons = [
  'logout',
  'logout_all',
  'session_revoked',
  'refresh_reuse',
  'account_deleted',
  'password_changed',
  'password_reset',
  'mfa_changed',
  'admin_revoked',
  'role_changed',
] as const;
export type RevocationReason = (typeof revocationReasons)[number];

/**
 * AUTH-18: the kinds of entry of the durable security log, a closed list. The
 * client shows them; the server writes them.
 */
export const securityLogTypes = [
  'login_succeeded',
  'login_failed',
  'account_locked',
  'mfa_enabled',
  'mfa_disabled',
  'recovery_codes_regenerated',
  'recovery_code_used',
  'password_changed',
  'password_reset_requested',
  'password_reset',
  'session_revoked',
  'refresh_reuse_detected',
  'admin_granted',
  'admin_revoked',
] as const;
export type SecurityLogType = (typeof securityLogTypes)[number];

/** AUTH-16: the client's page a password-reset link opens; the token follows in the fragment (`#token=`). */
export const resetPasswordPath = '/reset-password';
