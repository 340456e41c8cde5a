/** REST for the auth lifecycle only (PROTOCOL §3), under /api/v1/auth. */
import { Router, type CookieOptions, type Request, type Response } from 'express';
import { appError, ErrorCode } from '../../errors.js';
import { parseBody } from '../../http/validate.js';
import { authBasePath, loginBody, refreshCookieName, signupBody } from '../../../shared/schemas/auth.js';
import type { AuthResult, RefreshResult } from '../../../shared/schemas/auth.js';
import type { AuthService, ClientContext } from './auth.service.js';
import { bearerToken } from './tokens.js';

export function authRoutes(deps: { auth: AuthService; secureCookies: boolean }): Router {
  const { auth } = deps;
  const router = Router();

  const context = (req: Request): ClientContext => ({ ip: req.ip, userAgent: req.get('user-agent') });
  const cookieOptions = (): CookieOptions => ({
    httpOnly: true,
    secure: deps.secureCookies,
    sameSite: 'strict',
    path: authBasePath,
  });
  const setRefreshCookie = (res: Response, token: string, expiresAt: Date) =>
    res.cookie(refreshCookieName, token, { ...cookieOptions(), maxAge: Math.max(0, expiresAt.getTime() - Date.now()) });
  const clearRefreshCookie = (res: Response) => res.clearCookie(refreshCookieName, cookieOptions());
  const refreshCookie = (req: Request): string | undefined => {
    const value: unknown = req.cookies?.[refreshCookieName];
    return typeof value === 'string' && value.length > 0 ? value : undefined;
  };

  router.post('/signup', async (req, res) => {
    const issued = await auth.signup(parseBody(signupBody, req.body), context(req));
    setRefreshCookie(res, issued.refreshToken, issued.refreshExpiresAt);
    const body: AuthResult = { user: issued.user, accessToken: issued.accessToken, expiresAt: issued.expiresAt.toISOString() };
    res.status(201).json(body);
  });

  router.post('/login', async (req, res) => {
    const issued = await auth.login(parseBody(loginBody, req.body), context(req));
    setRefreshCookie(res, issued.refreshToken, issued.refreshExpiresAt);
    const body: AuthResult = { user: issued.user, accessToken: issued.accessToken, expiresAt: issued.expiresAt.toISOString() };
    res.status(200).json(body);
  });

  router.post('/refresh', async (req, res) => {
    try {
      const issued = await auth.refresh(refreshCookie(req), context(req));
      setRefreshCookie(res, issued.refreshToken, issued.refreshExpiresAt);
      const body: RefreshResult = { accessToken: issued.accessToken, expiresAt: issued.expiresAt.toISOString() };
      res.status(200).json(body);
    } catch (err) {
      clearRefreshCookie(res);
      throw err;
    }
  });

  router.post('/logout', async (req, res) => {
    const bearer = bearerToken(req.get('authorization'));
    let target: { sessionId: string; userId: string } | undefined;
    if (bearer) {
      const claims = await auth.authenticate(bearer);
      target = { sessionId: claims.sid, userId: claims.sub };
    } else {
      const cookie = refreshCookie(req);
      target = cookie ? await auth.sessionOfRefreshToken(cookie) : undefined;
    }
    if (!target) throw appError(ErrorCode.UNAUTHENTICATED);
    await auth.revokeSessions(target.userId, [target.sessionId], 'logout');
    clearRefreshCookie(res);
    res.status(204).end();
  });

  router.post('/logout-all', async (req, res) => {
    const claims = await auth.authenticate(bearerToken(req.get('authorization')));
    await auth.revokeSessions(claims.sub, 'all', 'logout_all');
    clearRefreshCookie(res);
    res.status(204).end();
  });

  return router;
}
