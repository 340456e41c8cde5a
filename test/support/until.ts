/** Polling for a condition that becomes true some time after an action (a reconnect, a rebuild). */
import jwt from 'jsonwebtoken';

/** Calls `probe` every 100 ms until `done` holds for its value, which it returns; throws after `timeoutMs`. */
export async function until<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what} not reached in ${timeoutMs} ms; last: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The session id inside an access token. */
export const sidOf = (token: string) => (jwt.decode(token) as { sid: string }).sid;
