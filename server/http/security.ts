/** Security headers (PROTOCOL §4) and CORS, applied before anything else answers. */
import helmet from 'helmet';
import cors from 'cors';
import type { RequestHandler } from 'express';
import type { Config } from '../config.js';
import { appError, ErrorCode } from '../errors.js';

export function securityHeaders(config: Pick<Config, 'isProduction'>): RequestHandler {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        scriptSrcAttr: ["'none'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'"],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        frameAncestors: ["'none'"],
        formAction: ["'self'"],
        manifestSrc: ["'self'"],
        workerSrc: ["'self'"],
        ...(config.isProduction ? { upgradeInsecureRequests: [] } : {}),
      },
    },
    strictTransportSecurity: config.isProduction ? { maxAge: 31_536_000, includeSubDomains: true, preload: false } : false,
    frameguard: { action: 'deny' },
    xXssProtection: true,
    xContentTypeOptions: true,
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginOpenerPolicy: { policy: 'same-origin' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
  });
}

/**
 * A browser Origin may act when it is one of `allowed`, or the server's own: the
 * host the request was sent to (behind a TLS proxy the scheme differs, the host does not).
 */
export function isAllowedOrigin(origin: string, allowed: readonly string[], host: string | undefined): boolean {
  if (allowed.includes(origin)) return true;
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

/** CORS for exactly the configured origins, with credentials (the refresh cookie). */
export function corsPolicy(config: Pick<Config, 'corsOrigins'>): RequestHandler {
  return cors({
    origin: (origin, callback) => callback(null, origin !== undefined && config.corsOrigins.includes(origin)),
    credentials: true,
    methods: ['GET', 'POST'],
    allowedHeaders: ['Content-Type', 'Authorization'],
    exposedHeaders: ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'Retry-After'],
    maxAge: 600,
  });
}

/**
 * A browser request from an origin that is neither allowed nor our own is
 * refused before it changes anything (CSRF defence in depth beside SameSite).
 */
export function originGuard(config: Pick<Config, 'corsOrigins'>): RequestHandler {
  return (req, _res, next) => {
    const origin = req.get('origin');
    if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'OPTIONS' && origin !== undefined) {
      if (!isAllowedOrigin(origin, config.corsOrigins, req.get('host'))) {
        next(appError(ErrorCode.FORBIDDEN, { message: 'Origin not allowed' }));
        return;
      }
    }
    next();
  };
}
