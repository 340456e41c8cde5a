import { RestClient } from './http.js';
import { strongPassword, uniqueEmail } from './env.js';
import type { AuthResult } from '../../shared/schemas/auth.js';

export interface SignedUp {
  client: RestClient;
  email: string;
  password: string;
  auth: AuthResult;
}

/** Signs a new user up through REST and returns their client (holding the refresh cookie). */
export async function signUp(baseUrl: string, fields: { email?: string; password?: string; fullName?: string; timezone?: string } = {}): Promise<SignedUp> {
  const client = new RestClient(baseUrl);
  const email = fields.email ?? uniqueEmail();
  const password = fields.password ?? strongPassword();
  const res = await client.post<AuthResult>('/api/v1/auth/signup', { ...fields, email, password });
  if (res.status !== 201) throw new Error(`signup failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { client, email, password, auth: res.body };
}

export async function logIn(baseUrl: string, email: string, password: string): Promise<SignedUp> {
  const client = new RestClient(baseUrl);
  const res = await client.post<AuthResult>('/api/v1/auth/login', { email, password });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { client, email, password, auth: res.body };
}
