/**
 * AUTH-7 with Redis away: a logout made while Redis is down cannot cross the
 * adapter, so each node re-reads recent revocations from PostgreSQL when its
 * Redis connection returns and closes the sockets of revoked sessions.
 */
import { describe, expect, it } from 'vitest';
import { productionEnv } from './support/env.js';
import { startCluster } from './support/app.js';
import { signUp } from './support/users.js';
import { closed, connectError, connectReady, tabTracker } from './support/sockets.js';
import { startOwnRedis } from './support/redis-server.js';
import { ErrorCode } from '../shared/errors.js';

describe('AUTH-7 revocations made while Redis is down', () => {
  it('[AUTH-7][AUTH-10] reach the sockets on the other node within seconds of Redis coming back', async () => {
    await using redis = await startOwnRedis();
    await using cluster = await startCluster(2, productionEnv({ REDIS_URL: redis.url }));
    const [a, b] = cluster.nodes;
    const { track, closeAll } = tabTracker();
    try {
      const user = await signUp(a!.url);
      const bystander = await signUp(a!.url);
      const onB = track(await connectReady(b!.url, user.auth.accessToken));
      const otherOnB = track(await connectReady(b!.url, bystander.auth.accessToken));

      await redis.stop();
      await b!.logs.waitFor((r) => r.type === 'blacklist_unavailable');
      const res = await user.client.post('/api/v1/auth/logout', undefined, { token: user.auth.accessToken });
      expect(res.status).toBe(204);
      // The token is refused at once on every node (PostgreSQL fallback), even before Redis returns.
      expect(await connectError(b!.url, user.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);

      const gone = closed(onB, 15_000);
      await redis.start();
      const back = Date.now();
      await gone;
      expect(Date.now() - back).toBeLessThan(10_000);
      expect(onB.received.some((r) => r.event === 'session:revoked')).toBe(true);
      // The bystander is not revoked (its socket may still be closed to catch up: server/realtime/catch-up.ts).
      expect(otherOnB.received.some((r) => r.event === 'session:revoked')).toBe(false);
    } finally {
      closeAll();
    }
  }, 40_000);
});
