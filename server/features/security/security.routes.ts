/**
 * REST of the password reset (PROTOCOL §3b), under /api/v1/auth:
 * `POST /password/forgot` and `POST /password/reset`.
 */
import { Router, type Request } from 'express';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { appError, ErrorCode } from '../../errors.js';
import { parseBody } from '../../http/validate.js';
import { rateLimitKey } from '../../http/rate-limit.js';
import { limits } from '../../../shared/limits.js';
import { passwordForgotBody, passwordResetBody } from '../../../shared/schemas/security.js';
import { securityLog, type Logger } from '../../logger.js';
import type { Redis } from '../../redis.js';
import type { ClientContext } from '../auth/auth.service.js';
import type { AccountSecurity } from './security.service.js';

/** Reset requests one client address may make per hour, whatever the emails. */
const FORGOT_PER_IP_PER_HOUR = 20;

function hourlyLimiter(redis: Redis, keyPrefix: string, points: number) {
  const options = { keyPrefix, points, duration: 3600 };
  return new RateLimiterRedis({ ...options, storeClient: redis, rejectIfRedisNotReady: true, insuranceLimiter: new RateLimiterMemory(options) });
}

export function securityRoutes(deps: { accountSecurity: AccountSecurity; redis: Redis; logger: Logger }): Router {
  const { accountSecurity, logger } = deps;
  const router = Router();
  const perIp = hourlyLimiter(deps.redis, 'rl:forgot:ip', FORGOT_PER_IP_PER_HOUR);
  // AUTH-16: at most 3 links per email per hour. Counted alike for emails with and without an account.
  const perEmail = hourlyLimiter(deps.redis, 'rl:forgot:email', limits.resetLinksPerHour);
  const context = (req: Request): ClientContext => ({ ip: req.ip, userAgent: req.get('user-agent') });

  const consume = async (limiter: RateLimiterRedis, key: string, scope: string) => {
    try {
      await limiter.consume(key);
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      securityLog(logger, 'rate_limited', { scope, ...(scope === 'forgot_ip' ? { ip: key } : {}) });
      throw appError(ErrorCode.RATE_LIMITED, { message: 'Too many reset requests; try again later', retryAfterMs: Math.max(1, rejection.msBeforeNext) });
    }
  };

  /**
   * AUTH-16: the same answer, in the same time, whether the email has an account: after the limits (which
   * treat every email alike) it answers 202 at once, and the lookup, the link and the mail follow.
   */
  router.post('/password/forgot', async (req, res) => {
    const { email } = parseBody(passwordForgotBody, req.body);
    await consume(perIp, rateLimitKey(req.ip), 'forgot_ip');
    await consume(perEmail, email, 'forgot_email');
    accountSecurity.requestReset(email, context(req));
    res.status(202).json({});
  });

  router.post('/password/reset', async (req, res) => {
    await accountSecurity.resetPassword(parseBody(passwordResetBody, req.body), context(req));
    res.status(204).end();
  });

  return router;
}
