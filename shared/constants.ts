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
 * `admin_revoked` an admin's `ops:revoke-user`.
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
