/**
 * AUTH-8 (1.1): a revocation holds whatever happens to its write to Redis. A
 * write that fails, a Redis paused mid-write, and a Redis that restarts with
 * an older snapshot (marker included) must not bring a revoked token back: a
 * node trusts Redis's blacklist again only after it has re-checked it against
 * PostgreSQL. Two production nodes on a Redis of the test's own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { productionEnv, randomSecret, uniquePrefix } from './support/env.js';
import { startCluster, tokenVerdict, type Cluster, type TestApp } from './support/app.js';
import { signUp } from './support/users.js';
import { startOwnRedis, type OwnRedis } from './support/redis-server.js';
import { ErrorCode } from '../shared/errors.js';
import { sidOf, until } from './support/until.js';


let own: OwnRedis;
let cluster: Cluster;
let raw: Redis;
const prefix = uniquePrefix();
const a = (): TestApp => cluster.nodes[0]!;
const b = (): TestApp => cluster.nodes[1]!;

beforeAll(async () => {
  own = await startOwnRedis();
  cluster = await startCluster(2, productionEnv({ REDIS_URL: own.url, REDIS_PREFIX: prefix, SECRET_KEY: randomSecret(), RATE_LIMIT_PER_MINUTE: '10000' }));
  raw = new Redis(own.url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 200 });
  raw.on('error', () => undefined);
  await raw.connect();
});
afterAll(async () => {
  raw?.disconnect();
  await cluster?.close();
  await own?.[Symbol.asyncDispose]();
});

/** Both nodes have checked a valid token, and the blacklist is complete (its marker set). */
async function settled(token: string): Promise<void> {
  for (const node of [a(), b()]) expect(await tokenVerdict(node, token)).toBe('ok');
  await until(() => raw.exists(`${prefix}bl:ready`), (n) => n === 1, 10_000, 'the marker');
  await new Promise((r) => setTimeout(r, 200));
}

describe('AUTH-8 a blacklist write that fails', () => {
  it('[AUTH-8] a logout whose Redis write fails (Redis refuses writes) still refuses the token on both nodes, before and after Redis recovers; the entry is written later', async () => {
    const user = await signUp(a().url);
    const bystander = await signUp(a().url);
    await settled(bystander.auth.accessToken);

    // Redis stays up and answers reads, but refuses every write.
    await own.command('CONFIG', 'SET', 'maxmemory', '1');
    try {
      const res = await user.client.post('/api/v1/auth/logout', undefined, { token: user.auth.accessToken });
      expect(res.status).toBe(204);
      await a().logs.waitFor((r) => String(r.msg).startsWith('blacklist write failed'));
      expect(await raw.exists(`${prefix}bl:sid:${sidOf(user.auth.accessToken)}`)).toBe(0);
      for (const node of [a(), b()]) {
        expect(await tokenVerdict(node, user.auth.accessToken), node.deps.config.nodeId).toBe(ErrorCode.TOKEN_REVOKED);
        expect(await tokenVerdict(node, bystander.auth.accessToken), node.deps.config.nodeId).toBe('ok');
      }
      expect(a().deps.revocation.trusted).toBe(false);
    } finally {
      await own.command('CONFIG', 'SET', 'maxmemory', '0');
    }

    // Retried: the entry lands, the node trusts Redis again, and the token stays refused everywhere.
    await until(() => raw.exists(`${prefix}bl:sid:${sidOf(user.auth.accessToken)}`), (n) => n === 1, 10_000, 'the failed entry rewritten');
    await until(async () => a().deps.revocation.trusted, (t) => t, 10_000, 'node A trusts the blacklist again');
    for (const node of [a(), b()]) expect(await tokenVerdict(node, user.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
  });

  it('[AUTH-8] as a reviewer tries it by hand: kill -STOP Redis, log out, kill -CONT; the old token is refused on both nodes, during and after', async () => {
    const user = await signUp(a().url);
    const bystander = await signUp(a().url);
    await settled(bystander.auth.accessToken);
    own.pause();
    try {
      const res = await user.client.post('/api/v1/auth/logout', undefined, { token: user.auth.accessToken });
      expect(res.status).toBe(204);
      for (const node of [a(), b()]) expect(await tokenVerdict(node, user.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    } finally {
      own.resume();
    }
    for (const node of [a(), b()]) {
      expect(await tokenVerdict(node, user.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
      expect(await tokenVerdict(node, bystander.auth.accessToken)).toBe('ok');
    }
    await until(() => raw.exists(`${prefix}bl:sid:${sidOf(user.auth.accessToken)}`), (n) => n === 1, 10_000, 'the entry written');
    await until(async () => a().deps.revocation.trusted && b().deps.revocation.trusted, (t) => t, 10_000, 'both nodes trust the blacklist again');
    for (const node of [a(), b()]) expect(await tokenVerdict(node, user.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
  }, 30_000);
});

describe('AUTH-8 a Redis that restarts with an older snapshot', () => {
  it('[AUTH-8] the snapshot holds the marker but not a later revocation: after the restart the token is still refused on both nodes', async () => {
    const user = await signUp(a().url);
    const bystander = await signUp(a().url);
    await settled(bystander.auth.accessToken);
    await own.snapshot();
    expect((await user.client.post('/api/v1/auth/logout', undefined, { token: user.auth.accessToken })).status).toBe(204);
    expect(await raw.exists(`${prefix}bl:sid:${sidOf(user.auth.accessToken)}`)).toBe(1);

    await own.stop();
    await own.start();
    // Redis is back with the snapshot: the marker, and no entry for the session revoked after it.
    await until(() => raw.exists(`${prefix}bl:ready`).catch(() => -1), (n) => n >= 0, 10_000, 'redis back');
    for (const node of [a(), b()]) await until(async () => node.deps.redisWatch.isUp, (up) => up, 10_000, 'node reconnected');
    for (const node of [a(), b()]) {
      expect(await tokenVerdict(node, user.auth.accessToken), node.deps.config.nodeId).toBe(ErrorCode.TOKEN_REVOKED);
      expect(await tokenVerdict(node, bystander.auth.accessToken), node.deps.config.nodeId).toBe('ok');
    }
    // Rebuilt from PostgreSQL: the entry is back.
    await until(() => raw.exists(`${prefix}bl:sid:${sidOf(user.auth.accessToken)}`), (n) => n === 1, 10_000, 'entry rebuilt');
  }, 30_000);
});

describe('AUTH-8 an outage longer than the retry interval', () => {
  it('[AUTH-8] while Redis is down the rebuild keeps failing; once it is back each node rebuilds and trusts the blacklist again, with no token check to prompt it', async () => {
    const user = await signUp(a().url);
    await settled(user.auth.accessToken);
    await own.stop();
    // Several retries fail meanwhile ("redis not ready").
    await new Promise((r) => setTimeout(r, 2_500));
    expect(a().deps.revocation.trusted).toBe(false);
    await own.start();
    await until(async () => a().deps.revocation.trusted && b().deps.revocation.trusted, (t) => t, 8_000, 'both nodes trust the blacklist again');
    expect(await raw.exists(`${prefix}bl:ready`)).toBe(1);
  }, 20_000);
});
