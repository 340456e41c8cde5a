/** Limits of the wire contract, shared by server validation and client forms. */
export const limits = {
  /** JSON bodies over this many bytes answer 413 */
  httpBodyBytes: 102_400,
  /** Socket.IO frames over this many bytes close the socket */
  socketFrameBytes: 256 * 1024,
  passwordMinCodePoints: 12,
  passwordMaxCodePoints: 128,
  nistPasswordMinCodePoints: 15,
  emailMax: 320,
  fullNameMax: 200,
  timezoneMax: 64,
  taskTitleMax: 500,
  taskDescriptionMax: 10_000,
  taskProjectMax: 200,
  taskWaitingOnMax: 200,
  taskDependenciesMax: 100,
  chatContentMax: 16_000,
  conversationTitleMax: 200,
  pageMax: 100,
  /** `task:sync` answers a reset when `since` predates the kept purge records */
  tombstoneRetentionDays: 30,
  /** completed and deleted tasks older than this are purged */
  purgeAfterDays: 7,
  /** a second refresh with a just-rotated token inside this window succeeds */
  refreshGraceMs: 5_000,
  /** REM-7: a reminder may be set at most this far ahead (5 years) */
  remindAtMaxAheadMs: 5 * 366 * 86_400_000,
  /** CHAT-15: how long after a tool's change a client offers its Undo */
  undoWindowMs: 30_000,
  /** AUTH-14: recovery codes given at a time */
  recoveryCodes: 10,
  /** AUTH-13: how long an `MFA_REQUIRED` challenge lives */
  mfaChallengeMs: 5 * 60_000,
  /** AUTH-16: how long a password-reset link works */
  resetTokenMs: 30 * 60_000,
  /** AUTH-16: reset links per email per hour */
  resetLinksPerHour: 3,
  /** longest reset token parsed at all */
  resetTokenMax: 256,
} as const;

/** The characters AUTH-1 accepts as "special". */
export const passwordSpecials = '!@#$%^&*()_+-=[]{}|;:,.<>?';
