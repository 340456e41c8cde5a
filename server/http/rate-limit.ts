/**
 * AUTH-9: REST requests per client IP across all nodes (Redis), with a
 * per-process limiter as insurance when Redis is away.
 */
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
    const key = req.ip ?? 'unknown';
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
