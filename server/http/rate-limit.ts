/**
 * AUTH-9: REST requests per client IP across all nodes (Redis), with a
 * per-process limiter as insurance when Redis is away. An IPv6 client counts
 * by its /64, the block one subscriber gets: per address, one host would have
 * 2^64 limits of its own.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { RequestHandler } from 'express';
import { appError, ErrorCode } from '../errors.js';
import { securityLog, type Logger } from '../logger.js';
import type { Redis, RedisWatch } from '../redis.js';

export function restRateLimit(options: {
  redis: Redis;
  redisWatch: RedisWatch;
  perMinute: number;
  logger: Logger;
  onLimited?: () => void;
}): RequestHandler {
  const { perMinute, logger, redisWatch } = options;
  const limiterOptions = { keyPrefix: 'rl:rest', points: perMinute, duration: 60 };
  const limiter = new RateLimiterRedis({
    ...limiterOptions,
    storeClient: options.redis,
    rejectIfRedisNotReady: true,
    insuranceLimiter: new RateLimiterMemory(limiterOptions),
  });
  return async (req, res, next) => {
    const key = rateLimitKey(req.ip);
    if (!redisWatch.isUp) redisWatch.reportFallback('rest rate limit');
    let result: RateLimiterRes;
    let limited = false;
    try {
      result = await limiter.consume(key);
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) {
        next(rejection);
        return;
      }
      result = rejection;
      limited = true;
    }
    const resetSeconds = Math.max(0, Math.ceil(result.msBeforeNext / 1000));
    res.setHeader('RateLimit-Limit', String(perMinute));
    res.setHeader('RateLimit-Remaining', String(Math.max(0, result.remainingPoints)));
    res.setHeader('RateLimit-Reset', String(resetSeconds));
    if (limited) {
      options.onLimited?.();
      securityLog(logger, 'rate_limited', { scope: 'rest', ip: key, path: req.path });
      next(appError(ErrorCode.RATE_LIMITED, { retryAfterMs: result.msBeforeNext }));
      return;
    }
    next();
  };
}

/**
 * The key a client's requests count under: an IPv4 address as it is (an IPv4-mapped IPv6 one too), an IPv6
 * address by its first 64 bits (`2001:db8:0:1::/64`).
 */
export function rateLimitKey(ip: string | undefined): string {
  if (!ip) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (isIPv4(ip) || !isIPv6(ip)) return ip;
  return ipv6Prefix(ip, 4);
}

/** The first `groups` 16-bit groups of an IPv6 address as a prefix: `ipv6Prefix('2001:db8::1', 3)` is `2001:db8:0::/48`. */
export function ipv6Prefix(ip: string, groups: number): string {
  const bare = ip.toLowerCase().split('%')[0]!;
  const [head = '', tail] = bare.split('::');
  const groupsOf = (part: string) => (part ? part.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  const left = groupsOf(head);
  const right = tail === undefined ? [] : groupsOf(tail);
  const all = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${all
    .slice(0, groups)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/${groups * 16}`;
}
