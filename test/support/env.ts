/** Configuration for servers under test: production mode, secrets generated at run time. */
import { randomBytes, randomUUID } from 'node:crypto';
import { inject } from 'vitest';

export const randomSecret = (bytes = 32) => randomBytes(bytes).toString('base64url');

/** A password that satisfies AUTH-1 and is in no breach list. */
export const strongPassword = () => `Sam-${randomBytes(9).toString('base64url')}9a!Z`;

export const uniqueEmail = (tag = 'user') => `${tag}-${randomUUID()}@example.test`;

/** A per-cluster Redis prefix so parallel test files never share counters. */
export const uniquePrefix = () => `samtest:${randomUUID().slice(0, 8)}:`;

/** This test file's own database (`support/file-database.ts`). */
export function testDatabaseUrl(): string {
  const url = process.env.SAM_TEST_DATABASE_URL;
  if (!url) throw new Error('no test database: vitest.config.ts must list test/support/file-database.ts in setupFiles');
  return url;
}

/** What every test server gets: its own port, secret, Redis prefix; this run's database and Redis; no outbound breach check. */
export function serverEnvBase(): Record<string, string> {
  return {
    PORT: '0',
    SECRET_KEY: randomSecret(),
    DATABASE_URL: testDatabaseUrl(),
    REDIS_URL: inject('redisUrl'),
    REDIS_PREFIX: uniquePrefix(),
    HIBP_API_URL: 'off',
    LOG_LEVEL: 'info',
  };
}

/**
 * The environment of a production-mode server under test. Nodes that should
 * form one cluster share `REDIS_PREFIX` and `SECRET_KEY`.
 */
export function productionEnv(overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    ...serverEnvBase(),
    ENVIRONMENT: 'production',
    METRICS_TOKEN: randomSecret(),
    ANTHROPIC_API_KEY: randomSecret(),
    ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
    NODE_ID: `test-${randomUUID().slice(0, 6)}`,
    ...overrides,
  };
}
