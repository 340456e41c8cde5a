/** REST for the auth lifecycle only (PROTOCOL §3), under /api/v1/auth. */
import { Router, type CookieOptions, type Request, type Response } from 'express';
import { AppError, appError, ErrorCode, httpStatusOf } from '../../errors.js';
import { parseBody } from '../../http/validate.js';
import { authBasePath, loginBody, refreshCookieName, signupBody } from '../../../shared/schemas/auth.js';
import type { AuthResult, RefreshResult } from '../../../shared/schemas/auth.js';
import { loginMfaBody } from '../../../shared/schemas/security.js';
import type { AuthService, ClientContext, IssuedSession } from './auth.service.js';
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

  const signedIn = (res: Response, issued: IssuedSession) => {
    setRefreshCookie(res, issued.refreshToken, issued.refreshExpiresAt);
    const body: AuthResult = { user: issued.user, accessToken: issued.accessToken, expiresAt: issued.expiresAt.toISOString() };
    res.status(200).json(body);
  };

  // With two-factor on, a right password answers 401 MFA_REQUIRED with a challenge (AUTH-13).
  router.post('/login', async (req, res) => signedIn(res, await auth.login(parseBody(loginBody, req.body), context(req))));
  router.post('/login/mfa', async (req, res) => signedIn(res, await auth.loginMfa(parseBody(loginMfaBody, req.body), context(req))));

  router.post('/refresh', async (req, res) => {
    try {
      const issued = await auth.refresh(refreshCookie(req), context(req));
      setRefreshCookie(res, issued.refreshToken, issued.refreshExpiresAt);
      const body: RefreshResult = { accessToken: issued.accessToken, expiresAt: issued.expiresAt.toISOString() };
      res.status(200).json(body);
    } catch (err) {
      // Only a refusal of the token ends the cookie; a failure to answer (503 while PostgreSQL is away) keeps it.
      if (err instanceof AppError && httpStatusOf[err.code] === 401) clearRefreshCookie(res);
      throw err;
    }
  });

  /**
   * AUTH-7: a logout ends the Bearer's session (or, with an expired Bearer or none, the refresh cookie's);
   * every answer clears the cookie, so that no client believes it logged out while its cookie lives on.
   */
  const logout = (revoke: (target: { sessionId: string; userId: string }) => Promise<unknown>, options: { bearerRequired: boolean }) => async (req: Request, res: Response) => {
    try {
      const bearer = bearerToken(req.get('authorization'));
      if (!bearer && options.bearerRequired) throw appError(ErrorCode.UNAUTHENTICATED);
      await revoke(await auth.logoutTarget(bearer, refreshCookie(req)));
      res.status(204);
    } finally {
      clearRefreshCookie(res);
    }
    res.end();
  };

  router.post('/logout', logout((target) => auth.revokeSessions(target.userId, [target.sessionId], 'logout'), { bearerRequired: false }));
  router.post('/logout-all', logout((target) => auth.revokeSessions(target.userId, 'all', 'logout_all'), { bearerRequired: true }));

  return router;
}
