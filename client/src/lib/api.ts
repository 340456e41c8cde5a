/** REST for the auth lifecycle only (PROTOCOL §3). The refresh token stays in its HttpOnly cookie. */
import type { Ack, WireError } from '$shared/errors';
import type { AuthResult, RefreshResult } from '$shared/schemas/auth';
import { authBasePath as base } from '$shared/constants';
import { localError } from './errors';

export type ApiResult<T> = Ack<T> & { status: number };

function isWireError(value: unknown): value is WireError {
  return typeof value === 'object' && value !== null && typeof (value as WireError).code === 'string' && typeof (value as WireError).message === 'string';
}

async function post<T>(path: string, init: { body?: unknown; token?: string | null } = {}): Promise<ApiResult<T>> {
  const headers: Record<string, string> = {};
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers,
      credentials: 'same-origin',
      cache: 'no-store',
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
  } catch {
    return { ok: false, status: 0, error: localError('UNAVAILABLE', 'Cannot reach the server. Check your connection.') };
  }
  if (res.status === 204) return { ok: true, status: 204, data: undefined as T };
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  if (res.ok) return { ok: true, status: res.status, data: body as T };
  const error = isWireError(body) ? body : localError(res.status === 429 ? 'RATE_LIMITED' : 'UNAVAILABLE', `The server answered ${res.status}.`);
  if (error.retryAfterMs === undefined) {
    const retryAfter = Number(res.headers.get('retry-after'));
    if (Number.isFinite(retryAfter) && retryAfter > 0) error.retryAfterMs = retryAfter * 1000;
  }
  return { ok: false, status: res.status, error };
}

export const api = {
  signup: (body: { email: string; password: string; fullName?: string; timezone?: string }) => post<AuthResult>('/signup', { body }),
  login: (body: { email: string; password: string }) => post<AuthResult>('/login', { body }),
  refresh: () => post<RefreshResult>('/refresh'),
  logout: (token: string | null) => post<void>('/logout', { token }),
  logoutAll: (token: string | null) => post<void>('/logout-all', { token }),
  /** The second step of a login with two-factor on (§3b): the challenge of the `MFA_REQUIRED` answer and a code. */
  loginMfa: (body: { challenge: string; code: string }) => post<AuthResult>('/login/mfa', { body }),
  /** Answers 202 whether or not the email has an account (AUTH-16). */
  forgotPassword: (body: { email: string }) => post<Record<string, never>>('/password/forgot', { body }),
  resetPassword: (body: { token: string; password: string }) => post<void>('/password/reset', { body }),
};
export type Api = typeof api;
