/**
 * The only reader of `process.env` (CONVENTIONS 8). Parsed once with zod; on any
 * bad value the process refuses to start with one message naming every bad
 * variable (CFG-1).
 */
import os from 'node:os';
import { ECDH, createECDH, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { limits } from '../shared/limits.js';

const environments = ['development', 'test', 'production'] as const;
export type Environment = (typeof environments)[number];

// claude-sonnet-4-5 reaches end of life on 2026-11-30 (the SDK's deprecation list); the current Sonnet instead.
const DEFAULT_MODEL = 'claude-sonnet-5-5';
const PUBLIC_PWNED_PASSWORDS = 'https://api.pwnedpasswords.com';
const VITE_DEV_ORIGIN = 'http://localhost:5173';

const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const positiveDecimal = z
  .string()
  .trim()
  .regex(/^\d+(\.\d+)?$/, 'must be a positive number')
  .transform(Number)
  .pipe(z.number().positive('must be greater than 0').max(525_600, 'must be at most 525600'));

const url = (protocols: string[]) =>
  z
    .string()
    .trim()
    .refine((v) => {
      try {
        return protocols.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    }, `must be a ${protocols.map((p) => p.replace(':', '')).join(' or ')} URL`);

const list = z
  .string()
  .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));

const origin = z.string().refine((v) => {
  if (v === '*') return false;
  try {
    const u = new URL(v);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === v;
  } catch {
    return false;
  }
}, 'must be exact origins such as https://sam.example.com (no "*", no path or trailing slash)');

/** base64url without padding (RFC 7515 §2), `bytes` long once decoded */
const base64url = (bytes: number, what: string) =>
  z
    .string()
    .trim()
    .refine((v) => /^[A-Za-z0-9_-]+$/.test(v) && Buffer.from(v, 'base64url').length === bytes, `must be ${what}: ${bytes} bytes in base64url (no padding)`);

/** Express `trust proxy`: true/false, a hop count, or addresses/subnets. */
const trustProxy = z
  .string()
  .trim()
  .transform((v): boolean | number | string[] => {
    if (v === 'true') return true;
    if (v === 'false') return false;
    if (/^\d+$/.test(v)) return Number(v);
    return v.split(',').map((s) => s.trim()).filter(Boolean);
  });

const envSchema = z.object({
  PORT: int(0, 65535).default(3000),
  ENVIRONMENT: z.enum(environments, { error: `must be one of ${environments.join(', ')}` }).default('development'),
  SECRET_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
  DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
  REDIS_URL: url(['redis:', 'rediss:']).optional(),
  REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:_-]{1,64}$/, 'must be 1–64 of A-Z a-z 0-9 : _ -')
    .default('sam:'),
  CORS_ORIGINS: list.pipe(z.array(origin)).optional(),
  ANTHROPIC_API_KEY: z.string().trim().min(1).optional(),
  ANTHROPIC_BASE_URL: url(['http:', 'https:']).optional(),
  ANTHROPIC_MODEL: z.string().trim().min(1).default(DEFAULT_MODEL),
  ACCESS_TOKEN_EXPIRE_MINUTES: positiveDecimal.default(30),
  REFRESH_TOKEN_EXPIRE_DAYS: positiveDecimal.default(7),
  SESSION_MAX_DAYS: positiveDecimal.default(30),
  RATE_LIMIT_PER_MINUTE: int(1, 1_000_000).default(100),
  LOGIN_MAX_FAILURES: int(1, 1000).default(5),
  LOCKOUT_MINUTES: positiveDecimal.default(30),
  SOCKET_EVENTS_PER_MINUTE: int(1, 1_000_000).default(600),
  CHAT_MESSAGES_PER_MINUTE: int(1, 100_000).default(20),
  MAX_SOCKETS_PER_USER: int(1, 100_000).default(30),
  NODE_ID: z.string().trim().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1–64 of A-Z a-z 0-9 . _ : -').optional(),
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  PASSWORD_POLICY: z.enum(['seed', 'nist'], { error: 'must be seed or nist' }).default('seed'),
  HIBP_API_URL: z.union([z.literal('off'), url(['http:', 'https:'])]).optional(),
  TRUST_PROXY: trustProxy.optional(),
  VAPID_PUBLIC_KEY: base64url(65, 'an uncompressed P-256 public key').optional(),
  VAPID_PRIVATE_KEY: base64url(32, 'a P-256 private key').optional(),
  VAPID_SUBJECT: z
    .string()
    .trim()
    .refine((v) => {
      try {
        const u = new URL(v);
        return (u.protocol === 'mailto:' && u.pathname.includes('@')) || (u.protocol === 'https:' && u.hostname !== '');
      } catch {
        return false;
      }
    }, 'must be a mailto: address or an https: URL (RFC 8292 §2.1)')
    .optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  AUTO_MIGRATE: z.enum(['true', 'false']).optional(),
  SHUTDOWN_TIMEOUT_MS: int(100, 60_000).default(8_000),
  DRAIN_TIMEOUT_MS: int(0, 600_000).default(20_000),
  UPSTREAM_TIMEOUT_SECONDS: positiveDecimal.default(60),
  APP_URL: url(['http:', 'https:']).optional(),
  SMTP_URL: url(['smtp:', 'smtps:']).optional(),
  MAIL_FROM: z.string().trim().min(3).max(320).default('Sam <no-reply@localhost>'),
  MFA_CHALLENGE_TTL_SECONDS: int(1, 3600).optional(),
});

export interface Config {
  port: number;
  environment: Environment;
  isProduction: boolean;
  /** HMAC key for access tokens; random per process outside production when unset */
  secretKey: string;
  secretKeyGenerated: boolean;
  databaseUrl: string;
  redisUrl: string;
  /** prefix of every Redis key and channel this process uses */
  redisPrefix: string;
  /** exact origins allowed for CORS and socket handshakes, besides the server's own */
  corsOrigins: string[];
  anthropic: {
    apiKey: string | undefined;
    baseUrl: string | undefined;
    model: string;
    /** true when no key is set outside production: the embedded offline model serves */
    offline: boolean;
  };
  /** access token lifetime in whole seconds (at least 1) */
  accessTokenTtlSeconds: number;
  /** lifetime of one refresh token, in seconds */
  refreshTokenTtlSeconds: number;
  /** absolute lifetime of a session, which rotation never extends, in seconds */
  sessionMaxSeconds: number;
  rateLimitPerMinute: number;
  loginMaxFailures: number;
  lockoutSeconds: number;
  socketEventsPerMinute: number;
  chatMessagesPerMinute: number;
  /** sockets of one user across all nodes (RT-8) */
  maxSocketsPerUser: number;
  nodeId: string;
  metricsToken: string | undefined;
  passwordPolicy: 'seed' | 'nist';
  /** base URL of a k-anonymity range API, or null when off */
  hibpApiUrl: string | null;
  trustProxy: boolean | number | string[] | undefined;
  /** Web Push for reminders (VAPID, RFC 8292); null when not configured */
  vapid: VapidConfig | null;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** apply pending migrations at startup (default outside production) */
  autoMigrate: boolean;
  shutdownTimeoutMs: number;
  /** on SIGTERM, how long running answers may go on before they end as `interrupted` */
  drainTimeoutMs: number;
  /** an answer whose upstream sends nothing for this long ends as an UPSTREAM error */
  upstreamIdleTimeoutMs: number;
  /** public base URL of the client, for links sent by email (AUTH-16), no trailing slash */
  appUrl: string;
  /** outgoing mail over SMTP; undefined: the development mailbox (the log) outside production, none in production */
  smtpUrl: string | undefined;
  mailFrom: string;
  /** AUTH-13: how long an MFA_REQUIRED challenge lives (5 minutes; shorter only in tests) */
  mfaChallengeMs: number;
}

export interface VapidConfig {
  /** uncompressed P-256 point, base64url: what browsers pass as `applicationServerKey` */
  publicKey: string;
  /** P-256 private scalar, base64url */
  privateKey: string;
  /** `mailto:` or `https:` contact of the operator, sent to push services */
  subject: string;
}

const VAPID_VARIABLES = ['VAPID_PUBLIC_KEY', 'VAPID_PRIVATE_KEY', 'VAPID_SUBJECT'] as const;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment; throws ConfigError listing every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Readonly<Config> {
  // An empty variable counts as unset, as in most process managers.
  const raw = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(raw);
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0] ?? 'environment');
      problems.push(`${name}: ${issue.message}`);
    }
  }
  // Checked on the raw values so that missing variables are listed even when others are invalid (CFG-1).
  // Admins are granted by an operator now (PROTOCOL §3a): a list that would silently do nothing is refused.
  if (raw.ADMIN_EMAILS !== undefined) {
    problems.push('ADMIN_EMAILS: is no longer read; grant admins with `npm run admin -- grant <email>` (or `node dist/server/cli.js admin grant <email>`) and remove the variable');
  }
  if (raw.ENVIRONMENT === 'production') {
    const required = ['SECRET_KEY', 'DATABASE_URL', 'REDIS_URL', 'ANTHROPIC_API_KEY', 'METRICS_TOKEN'] as const;
    for (const name of required) {
      if (raw[name] === undefined) problems.push(`${name}: is required when ENVIRONMENT=production`);
    }
  }
  problems.push(...vapidProblems(raw, parsed.success ? parsed.data : undefined));
  // AUTH-13 fixes the challenge at 5 minutes; tests of its expiry shorten it, and only they may.
  if (raw.MFA_CHALLENGE_TTL_SECONDS !== undefined && raw.ENVIRONMENT !== 'test') {
    problems.push('MFA_CHALLENGE_TTL_SECONDS: is for tests only (ENVIRONMENT=test); the two-factor challenge lives 5 minutes');
  }
  if (!parsed.success || problems.length > 0) throw new ConfigError(dedupe(problems));
  const e = parsed.data;
  const production = e.ENVIRONMENT === 'production';

  const port = e.PORT;
  const accessTokenTtlSeconds = Math.max(1, Math.floor(e.ACCESS_TOKEN_EXPIRE_MINUTES * 60));
  const corsOrigins =
    e.CORS_ORIGINS ?? (e.ENVIRONMENT === 'development' ? [VITE_DEV_ORIGIN, `http://localhost:${port}`] : []);
  const offline = !production && e.ANTHROPIC_API_KEY === undefined;
  const hibp = e.HIBP_API_URL ?? (production ? PUBLIC_PWNED_PASSWORDS : 'off');

  return Object.freeze({
    port,
    environment: e.ENVIRONMENT,
    isProduction: production,
    secretKey: e.SECRET_KEY ?? randomBytes(48).toString('base64url'),
    secretKeyGenerated: e.SECRET_KEY === undefined,
    databaseUrl: e.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/sam',
    redisUrl: e.REDIS_URL ?? 'redis://127.0.0.1:6379',
    redisPrefix: e.REDIS_PREFIX,
    corsOrigins,
    anthropic: {
      apiKey: e.ANTHROPIC_API_KEY,
      baseUrl: e.ANTHROPIC_BASE_URL,
      model: e.ANTHROPIC_MODEL,
      offline,
    },
    accessTokenTtlSeconds,
    refreshTokenTtlSeconds: Math.max(1, Math.floor(e.REFRESH_TOKEN_EXPIRE_DAYS * 86_400)),
    sessionMaxSeconds: Math.max(1, Math.floor(e.SESSION_MAX_DAYS * 86_400)),
    rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE,
    loginMaxFailures: e.LOGIN_MAX_FAILURES,
    lockoutSeconds: Math.max(1, Math.round(e.LOCKOUT_MINUTES * 60)),
    socketEventsPerMinute: e.SOCKET_EVENTS_PER_MINUTE,
    chatMessagesPerMinute: e.CHAT_MESSAGES_PER_MINUTE,
    maxSocketsPerUser: e.MAX_SOCKETS_PER_USER,
    // With PORT=0 the port is not known yet, and several such processes may share a host.
    nodeId: e.NODE_ID ?? `${os.hostname()}:${port === 0 ? `pid${process.pid}` : port}`,
    metricsToken: e.METRICS_TOKEN,
    passwordPolicy: e.PASSWORD_POLICY,
    hibpApiUrl: hibp === 'off' ? null : hibp.replace(/\/+$/, ''),
    trustProxy: e.TRUST_PROXY,
    vapid:
      e.VAPID_PUBLIC_KEY !== undefined && e.VAPID_PRIVATE_KEY !== undefined && e.VAPID_SUBJECT !== undefined
        ? Object.freeze({ publicKey: e.VAPID_PUBLIC_KEY, privateKey: e.VAPID_PRIVATE_KEY, subject: e.VAPID_SUBJECT })
        : null,
    logLevel: e.LOG_LEVEL,
    autoMigrate: e.AUTO_MIGRATE === undefined ? !production : e.AUTO_MIGRATE === 'true',
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    drainTimeoutMs: e.DRAIN_TIMEOUT_MS,
    upstreamIdleTimeoutMs: Math.max(100, Math.round(e.UPSTREAM_TIMEOUT_SECONDS * 1000)),
    appUrl: (e.APP_URL ?? `http://localhost:${port}`).replace(/\/+$/, ''),
    smtpUrl: e.SMTP_URL,
    mailFrom: e.MAIL_FROM,
    mfaChallengeMs: e.MFA_CHALLENGE_TTL_SECONDS === undefined ? limits.mfaChallengeMs : e.MFA_CHALLENGE_TTL_SECONDS * 1000,
  });
}

/**
 * The VAPID variables come together or not at all: one or two of them would
 * leave Web Push silently off. A key pair whose halves do not belong together
 * would have every push refused by the push services, so it is refused here.
 */
function vapidProblems(raw: Record<string, string | undefined>, parsed: z.infer<typeof envSchema> | undefined): string[] {
  const missing = VAPID_VARIABLES.filter((name) => raw[name] === undefined);
  if (missing.length === VAPID_VARIABLES.length) return [];
  if (missing.length > 0) {
    const given = VAPID_VARIABLES.filter((name) => raw[name] !== undefined);
    return missing.map((name) => `${name}: is required with ${given.join(' and ')} (set all three of ${VAPID_VARIABLES.join(', ')}, or none)`);
  }
  const publicKey = parsed?.VAPID_PUBLIC_KEY;
  const privateKey = parsed?.VAPID_PRIVATE_KEY;
  if (publicKey === undefined || privateKey === undefined) return [];
  try {
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(Buffer.from(privateKey, 'base64url'));
    const derived = ECDH.convertKey(ecdh.getPublicKey(), 'prime256v1', undefined, undefined, 'uncompressed') as Buffer;
    if (derived.equals(Buffer.from(publicKey, 'base64url'))) return [];
    return ['VAPID_PUBLIC_KEY: is not the public key of VAPID_PRIVATE_KEY (generate both with `npx web-push generate-vapid-keys`)'];
  } catch {
    return ['VAPID_PRIVATE_KEY: is not a valid P-256 private key'];
  }
}

function dedupe(items: string[]): string[] {
  return [...new Set(items)];
}
