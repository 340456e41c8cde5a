/**
 * CFG-1 and PROTOCOL §2: `loadConfig` on its own, then the compiled server as a
 * real process (run `npx tsc -p tsconfig.build.json` first): a bad
 * configuration stops it with one message; a good one serves `/health` and
 * SIGTERM lets an in-flight request finish before exiting 0.
 */
import http from 'node:http';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import webpush from 'web-push';
import { ConfigError, loadConfig } from '../server/config.js';
import { productionEnv, randomSecret } from './support/env.js';
import { startNodeProcess } from './support/app.js';
import { signUp } from './support/users.js';
import { runProcess } from './support/process.js';

const mainJs = path.resolve(import.meta.dirname, '../dist/server/main.js');

/** A complete production environment that needs no running service to parse. */
const completeProduction = (overrides: Record<string, string | undefined> = {}) => ({
  ENVIRONMENT: 'production',
  SECRET_KEY: randomSecret(),
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/sam',
  REDIS_URL: 'redis://127.0.0.1:6379',
  ANTHROPIC_API_KEY: randomSecret(),
  METRICS_TOKEN: randomSecret(),
  ...overrides,
});

/** The problems `loadConfig(env)` reports, or [] when it accepts the environment. */
const problemsOf = (env: Record<string, string | undefined>): string[] => {
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
};

/** Problems naming `variable` (each problem starts with the variable's name). */
const about = (problems: string[], variable: string) => problems.filter((p) => p.startsWith(`${variable}:`));

describe('CFG-1 loadConfig refuses bad configuration', () => {
  it('[CFG-1] production without its required variables lists every one of them in one error', () => {
    let error: unknown;
    try {
      loadConfig({ ENVIRONMENT: 'production' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const { problems, message } = error as ConfigError;
    for (const name of ['SECRET_KEY', 'DATABASE_URL', 'REDIS_URL', 'ANTHROPIC_API_KEY', 'METRICS_TOKEN']) {
      expect(about(problems, name), name).toHaveLength(1);
      expect(message).toContain(name);
    }
    expect(problems).toHaveLength(5);
  });

  it('[CFG-1] an empty variable counts as missing', () => {
    const problems = problemsOf(completeProduction({ SECRET_KEY: '', METRICS_TOKEN: '' }));
    expect(about(problems, 'SECRET_KEY')).toHaveLength(1);
    expect(about(problems, 'METRICS_TOKEN')).toHaveLength(1);
  });

  it('[CFG-1] invalid values and missing required ones are reported together', () => {
    const problems = problemsOf({ ENVIRONMENT: 'production', SECRET_KEY: 'short', PORT: 'abc', CORS_ORIGINS: '*' });
    for (const name of ['SECRET_KEY', 'PORT', 'CORS_ORIGINS', 'DATABASE_URL', 'REDIS_URL', 'ANTHROPIC_API_KEY', 'METRICS_TOKEN']) {
      expect(about(problems, name), `${name} in ${JSON.stringify(problems)}`).toHaveLength(1);
    }
  });

  it('[CFG-1] SECRET_KEY shorter than 32 characters is refused, 32 is accepted', () => {
    expect(about(problemsOf(completeProduction({ SECRET_KEY: 'x'.repeat(31) })), 'SECRET_KEY')).toHaveLength(1);
    expect(problemsOf(completeProduction({ SECRET_KEY: 'x'.repeat(32) }))).toEqual([]);
    // Outside production too: a key that is set must be strong.
    expect(about(problemsOf({ ENVIRONMENT: 'development', SECRET_KEY: 'tooshort' }), 'SECRET_KEY')).toHaveLength(1);
  });

  it('[CFG-1] CORS_ORIGINS refuses "*" and anything that is not an exact origin', () => {
    for (const value of ['*', 'https://a.example/', 'https://a.example/path', 'https://a.example,*', 'a.example', 'ftp://a.example', 'https://a.example?x=1']) {
      expect(about(problemsOf(completeProduction({ CORS_ORIGINS: value })), 'CORS_ORIGINS'), value).toHaveLength(1);
    }
    const config = loadConfig(completeProduction({ CORS_ORIGINS: 'https://a.example, http://localhost:8080' }));
    expect(config.corsOrigins).toEqual(['https://a.example', 'http://localhost:8080']);
  });

  it('[CFG-1] every other validated variable refuses a bad value, naming it', () => {
    const cases: [string, string][] = [
      ['ENVIRONMENT', 'staging'],
      ['ENVIRONMENT', 'Production'],
      ['PORT', 'abc'],
      ['PORT', '3000.5'],
      ['PORT', '-1'],
      ['PORT', '70000'],
      ['DATABASE_URL', 'mysql://localhost/sam'],
      ['DATABASE_URL', 'not a url'],
      ['REDIS_URL', 'http://127.0.0.1:6379'],
      ['REDIS_PREFIX', 'has spaces'],
      ['ANTHROPIC_BASE_URL', 'localhost:9'],
      ['ACCESS_TOKEN_EXPIRE_MINUTES', '0'],
      ['ACCESS_TOKEN_EXPIRE_MINUTES', '-1'],
      ['ACCESS_TOKEN_EXPIRE_MINUTES', 'abc'],
      ['REFRESH_TOKEN_EXPIRE_DAYS', 'seven'],
      ['RATE_LIMIT_PER_MINUTE', '0'],
      ['RATE_LIMIT_PER_MINUTE', '10.5'],
      ['LOGIN_MAX_FAILURES', 'five'],
      ['LOCKOUT_MINUTES', '0'],
      ['SOCKET_EVENTS_PER_MINUTE', 'lots'],
      ['CHAT_MESSAGES_PER_MINUTE', '0'],
      ['MAX_SOCKETS_PER_USER', '0'],
      ['NODE_ID', 'has spaces'],
      ['METRICS_TOKEN', 'short'],
      ['PASSWORD_POLICY', 'strict'],
      ['HIBP_API_URL', 'ftp://hibp.example'],
      ['HIBP_API_URL', 'on'],
      ['LOG_LEVEL', 'verbose'],
      ['AUTO_MIGRATE', 'yes'],
      ['SHUTDOWN_TIMEOUT_MS', '10'],
    ];
    for (const [name, value] of cases) {
      const problems = problemsOf(completeProduction({ [name]: value }));
      expect(about(problems, name), `${name}=${value} gave ${JSON.stringify(problems)}`).toHaveLength(1);
      // The message says why, never just the name.
      expect(about(problems, name)[0]!.length).toBeGreaterThan(name.length + 5);
    }
  });

  it('[CFG-1][§3a] ADMIN_EMAILS, any value, stops startup with a message naming the admin command', () => {
    for (const value of ['admin@example.test', 'a@example.test,b@example.test']) {
      const problems = about(problemsOf(completeProduction({ ADMIN_EMAILS: value })), 'ADMIN_EMAILS');
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain('npm run admin -- grant <email>');
      expect(problems[0]).toContain('node dist/server/cli.js admin grant <email>');
    }
    // Outside production too: a list of admins that would silently grant nothing is refused.
    expect(about(problemsOf({ ADMIN_EMAILS: 'admin@example.test' }), 'ADMIN_EMAILS')).toHaveLength(1);
    expect(problemsOf({ ADMIN_EMAILS: '' })).toEqual([]);
  });

  it('[CFG-1] VAPID_PUBLIC_KEY, VAPID_PRIVATE_KEY and VAPID_SUBJECT come all three or none, naming the missing ones', () => {
    const keys = webpush.generateVAPIDKeys();
    const all = { VAPID_PUBLIC_KEY: keys.publicKey, VAPID_PRIVATE_KEY: keys.privateKey, VAPID_SUBJECT: 'mailto:ops@example.test' };
    const names = Object.keys(all) as (keyof typeof all)[];
    for (const given of names) {
      const problems = problemsOf(completeProduction({ [given]: all[given] }));
      expect(problems, given).toHaveLength(2);
      for (const name of names.filter((n) => n !== given)) {
        expect(about(problems, name), `${name} without it, ${given} alone`).toHaveLength(1);
        expect(about(problems, name)[0]).toContain(given);
      }
    }
    for (const left of names) {
      const problems = problemsOf(completeProduction({ ...all, [left]: undefined }));
      expect(problems, `all but ${left}`).toEqual([expect.stringMatching(new RegExp(`^${left}: is required with `))]);
    }
    // Outside production too, and an empty variable counts as missing.
    expect(about(problemsOf({ ...all, VAPID_SUBJECT: '' }), 'VAPID_SUBJECT')).toHaveLength(1);
    expect(problemsOf(completeProduction(all))).toEqual([]);
    expect(problemsOf({})).toEqual([]);
  });

  it('[CFG-1] VAPID values are checked: keys of the right size, a key pair that belongs together, a mailto: or https: subject', () => {
    const keys = webpush.generateVAPIDKeys();
    const all = { VAPID_PUBLIC_KEY: keys.publicKey, VAPID_PRIVATE_KEY: keys.privateKey, VAPID_SUBJECT: 'https://sam.example.test/contact' };
    const cases: [keyof typeof all, string][] = [
      ['VAPID_SUBJECT', 'http://sam.example.test'],
      ['VAPID_SUBJECT', 'ops@example.test'],
      ['VAPID_SUBJECT', 'mailto:'],
      ['VAPID_SUBJECT', 'not a url'],
      ['VAPID_PUBLIC_KEY', keys.publicKey.slice(0, -2)],
      ['VAPID_PUBLIC_KEY', `${keys.publicKey}=`],
      ['VAPID_PUBLIC_KEY', Buffer.from(keys.publicKey, 'base64url').toString('base64')],
      ['VAPID_PRIVATE_KEY', keys.publicKey],
      ['VAPID_PRIVATE_KEY', 'short'],
      // the other key pair's public half
      ['VAPID_PUBLIC_KEY', webpush.generateVAPIDKeys().publicKey],
      // zero is no private key on P-256
      ['VAPID_PRIVATE_KEY', Buffer.alloc(32).toString('base64url')],
    ];
    for (const [name, value] of cases) {
      const problems = problemsOf(completeProduction({ ...all, [name]: value }));
      expect(problems, `${name}=${value}`).toHaveLength(1);
      expect(about(problems, name), `${name}=${value} gave ${JSON.stringify(problems)}`).toHaveLength(1);
      // A problem never repeats a key.
      expect(problems[0]).not.toContain(keys.privateKey);
    }
  });

  it('[CFG-1] the ConfigError message lists each problem on its own line', () => {
    let error: ConfigError | undefined;
    try {
      loadConfig({ ENVIRONMENT: 'production', PORT: 'abc' });
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    for (const problem of error!.problems) expect(error!.message).toContain(`- ${problem}`);
  });
});

describe('PROTOCOL §2 values and defaults', () => {
  it('[CFG-1] ACCESS_TOKEN_EXPIRE_MINUTES takes decimals, rounded down to whole seconds, at least 1', () => {
    const ttl = (minutes: string) => loadConfig(completeProduction({ ACCESS_TOKEN_EXPIRE_MINUTES: minutes })).accessTokenTtlSeconds;
    expect(ttl('0.05')).toBe(3);
    expect(ttl('0.1')).toBe(6);
    expect(ttl('0.001')).toBe(1);
    expect(ttl('0.0199')).toBe(1);
    expect(ttl('1.5')).toBe(90);
    expect(ttl('30')).toBe(1800);
  });

  it('[CFG-1] defaults of §2 outside production', () => {
    const config = loadConfig({});
    expect(config.environment).toBe('development');
    expect(config.isProduction).toBe(false);
    expect(config.port).toBe(3000);
    expect(config.rateLimitPerMinute).toBe(100);
    expect(config.loginMaxFailures).toBe(5);
    expect(config.lockoutSeconds).toBe(30 * 60);
    expect(config.socketEventsPerMinute).toBe(600);
    expect(config.chatMessagesPerMinute).toBe(20);
    expect(config.accessTokenTtlSeconds).toBe(30 * 60);
    expect(config.refreshTokenTtlSeconds).toBe(7 * 86_400);
    expect(config.passwordPolicy).toBe('seed');
    expect(config.hibpApiUrl).toBeNull();
    expect(config.anthropic.offline).toBe(true);
    expect(config.anthropic.apiKey).toBeUndefined();
    expect(config.anthropic.model).toMatch(/^claude-/);
    expect(config.databaseUrl).toBe('postgres://postgres@127.0.0.1:5432/sam');
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(config.logLevel).toBe('info');
    expect(config.maxSocketsPerUser).toBe(30);
    expect(config.metricsToken).toBeUndefined();
    expect(config.trustProxy).toBeUndefined();
    expect(config.nodeId).toMatch(/:3000$/);
    // A random key per process, with a warning (main.ts logs it).
    expect(config.secretKeyGenerated).toBe(true);
    expect(config.secretKey.length).toBeGreaterThanOrEqual(32);
    expect(loadConfig({}).secretKey).not.toBe(config.secretKey);
    // Development allows the Vite dev origin and the server's own; no "*".
    expect(config.corsOrigins).toEqual(['http://localhost:5173', 'http://localhost:3000']);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('[CFG-1] ENVIRONMENT=test: no CORS origins by default, HIBP off, offline model without a key', () => {
    const config = loadConfig({ ENVIRONMENT: 'test', PORT: '4000' });
    expect(config.environment).toBe('test');
    expect(config.port).toBe(4000);
    expect(config.corsOrigins).toEqual([]);
    expect(config.hibpApiUrl).toBeNull();
    expect(config.anthropic.offline).toBe(true);
    expect(loadConfig({ ENVIRONMENT: 'test', ANTHROPIC_API_KEY: randomSecret() }).anthropic.offline).toBe(false);
  });

  it('[CFG-1] defaults of §2 in production: the public range API, never the offline model', () => {
    const config = loadConfig(completeProduction());
    expect(config.isProduction).toBe(true);
    expect(config.hibpApiUrl).toBe('https://api.pwnedpasswords.com');
    expect(config.anthropic.offline).toBe(false);
    expect(config.secretKeyGenerated).toBe(false);
    expect(config.corsOrigins).toEqual([]);
    expect(config.port).toBe(3000);
    expect(config.rateLimitPerMinute).toBe(100);
    expect(config.passwordPolicy).toBe('seed');
    expect(loadConfig(completeProduction({ HIBP_API_URL: 'off' })).hibpApiUrl).toBeNull();
    expect(loadConfig(completeProduction({ HIBP_API_URL: 'http://127.0.0.1:9999/' })).hibpApiUrl).toBe('http://127.0.0.1:9999');
  });

  it('[CFG-1] explicit values are honoured', () => {
    const config = loadConfig(
      completeProduction({
        PORT: '0',
        RATE_LIMIT_PER_MINUTE: '7',
        LOGIN_MAX_FAILURES: '3',
        LOCKOUT_MINUTES: '0.5',
        SOCKET_EVENTS_PER_MINUTE: '50',
        CHAT_MESSAGES_PER_MINUTE: '2',
        PASSWORD_POLICY: 'nist',
        MAX_SOCKETS_PER_USER: '4',
        NODE_ID: 'node-a',
        TRUST_PROXY: 'loopback',
      }),
    );
    expect(config.port).toBe(0);
    expect(config.rateLimitPerMinute).toBe(7);
    expect(config.loginMaxFailures).toBe(3);
    expect(config.lockoutSeconds).toBe(30);
    expect(config.socketEventsPerMinute).toBe(50);
    expect(config.chatMessagesPerMinute).toBe(2);
    expect(config.passwordPolicy).toBe('nist');
    expect(config.maxSocketsPerUser).toBe(4);
    expect(config.nodeId).toBe('node-a');
    expect(config.trustProxy).toEqual(['loopback']);
    expect(loadConfig(completeProduction({ TRUST_PROXY: '1' })).trustProxy).toBe(1);
    expect(loadConfig(completeProduction({ TRUST_PROXY: 'true' })).trustProxy).toBe(true);
  });

  it('[CFG-1] Web Push is off without VAPID variables, and on with all three', () => {
    expect(loadConfig({}).vapid).toBeNull();
    expect(loadConfig(completeProduction()).vapid).toBeNull();
    const keys = webpush.generateVAPIDKeys();
    const config = loadConfig(completeProduction({ VAPID_PUBLIC_KEY: ` ${keys.publicKey}`, VAPID_PRIVATE_KEY: keys.privateKey, VAPID_SUBJECT: 'mailto:ops@example.test' }));
    expect(config.vapid).toEqual({ publicKey: keys.publicKey, privateKey: keys.privateKey, subject: 'mailto:ops@example.test' });
    expect(Object.isFrozen(config.vapid)).toBe(true);
  });
});

/** Runs the compiled server with exactly `env` until it exits. */
const runToExit = (env: Record<string, string | undefined>, timeoutMs = 10_000) => runProcess([mainJs], env, { timeoutMs });

describe('CFG-1 the process', () => {
  it('[CFG-1] production with missing and wrong variables exits non-zero at once with one message naming each', async () => {
    const env = productionEnv({ SECRET_KEY: 'too-short', PORT: 'abc', METRICS_TOKEN: undefined, REDIS_URL: undefined, CORS_ORIGINS: '*' });
    const result = await runToExit(env);
    expect(result.code).not.toBe(0);
    expect(result.code).not.toBeNull();
    expect(result.ms).toBeLessThan(5_000);
    const stderr = result.stderr.trim();
    // One message: a single "cannot start" headline, then one line per problem.
    expect(stderr.match(/cannot start/gi)).toHaveLength(1);
    for (const name of ['SECRET_KEY', 'PORT', 'METRICS_TOKEN', 'REDIS_URL', 'CORS_ORIGINS']) expect(stderr, name).toContain(name);
    for (const ok of ['DATABASE_URL', 'ANTHROPIC_API_KEY', 'ENVIRONMENT']) expect(stderr).not.toMatch(new RegExp(`^\\s*- ${ok}:`, 'm'));
    expect(stderr).not.toContain('    at ');
    expect(stderr).not.toContain(env.SECRET_KEY ?? 'unset');
    expect(result.stdout).toBe('');
  });

  it('[CFG-1] a single bad variable outside production stops the process too', async () => {
    const result = await runToExit({ ENVIRONMENT: 'staging' });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('ENVIRONMENT');
    expect(result.stderr).not.toContain('    at ');
    expect(result.stderr.match(/cannot start/gi)).toHaveLength(1);
  });

  it('[CFG-1][§3a] the server given ADMIN_EMAILS refuses to start and names `npm run admin`', async () => {
    const result = await runToExit(productionEnv({ ADMIN_EMAILS: 'boss@example.test' }));
    expect(result.code).toBe(78);
    expect(result.stderr.match(/cannot start/gi)).toHaveLength(1);
    expect(result.stderr).toMatch(/^\s*- ADMIN_EMAILS: .*npm run admin -- grant <email>/m);
    expect(result.stdout).toBe('');
  });

  it('[CFG-1] with a complete production environment it starts, /health is ok, and SIGTERM lets an in-flight login finish, then exits 0', async () => {
    await using node = await startNodeProcess(productionEnv({ RATE_LIMIT_PER_MINUTE: '10000' }));
    const health = await fetch(`${node.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok', checks: { database: 'ok', redis: 'ok' } });

    const { email, password } = await signUp(node.url);
    const body = JSON.stringify({ email, password });
    // The request is in flight before the signal: headers and half the body are sent, the rest follows after SIGTERM.
    const login = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        `${node.url}/api/v1/auth/login`,
        { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString('utf8')));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      req.write(body.slice(0, 10));
      setTimeout(() => req.end(body.slice(10)), 300);
    });
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    const exited = node.stop();
    const answered = await login;
    expect(answered.status).toBe(200);
    expect(JSON.parse(answered.body).user.email).toBe(email);
    const code = await exited;
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    // The signal came while the login was still running: it was answered after "shutting down".
    const messages = node.logs.records().map((r) => (r.type === 'login_succeeded' ? 'login_succeeded' : r.msg));
    expect(messages.indexOf('shutting down')).toBeGreaterThanOrEqual(0);
    expect(messages.lastIndexOf('login_succeeded')).toBeGreaterThan(messages.indexOf('shutting down'));
    expect(messages.indexOf('shutdown complete')).toBeGreaterThan(messages.lastIndexOf('login_succeeded'));
    // No new connection is accepted once it has gone.
    await expect(fetch(`${node.url}/health`)).rejects.toThrow();
  }, 30_000);
});
