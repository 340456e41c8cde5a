/** A small REST client for tests that keeps the refresh cookie like a browser would. */
export interface Reply<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  setCookie: string | undefined;
}

export class RestClient {
  cookie: string | undefined;

  constructor(readonly baseUrl: string) {}

  async post<T = any>(path: string, body?: unknown, init: { token?: string; headers?: Record<string, string>; raw?: string } = {}): Promise<Reply<T>> {
    const headers: Record<string, string> = { ...init.headers };
    if (body !== undefined || init.raw !== undefined) headers['content-type'] ??= 'application/json';
    if (init.token) headers.authorization = `Bearer ${init.token}`;
    if (this.cookie) headers.cookie = `refresh_token=${this.cookie}`;
    const res = await fetch(`${this.baseUrl}${path}`, {
      method: 'POST',
      headers,
      body: init.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
    return this.reply<T>(res);
  }

  async get<T = any>(path: string, headers: Record<string, string> = {}): Promise<Reply<T>> {
    const res = await fetch(`${this.baseUrl}${path}`, { headers });
    return this.reply<T>(res);
  }

  private async reply<T>(res: Response): Promise<Reply<T>> {
    const setCookie = res.headers.getSetCookie().find((c) => c.startsWith('refresh_token='));
    if (setCookie) {
      const value = setCookie.slice('refresh_token='.length, setCookie.indexOf(';'));
      this.cookie = value.length > 0 && !/Max-Age=0|Expires=Thu, 01 Jan 1970/.test(setCookie) ? value : undefined;
    }
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      /* keep text */
    }
    return { status: res.status, headers: res.headers, body: body as T, setCookie };
  }
}
