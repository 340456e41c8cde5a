/**
 * The `fetch` the Anthropic SDK is given: node:http(s) with keep-alive instead
 * of the global (undici) fetch. A streamed answer arrives one small SSE event
 * per read, and undici's fetch spends more per read than node:http does:
 * reading streams through the SDK cost 2–32 % less CPU per event this way
 * (`npm run bench:micro`), and the relay's server CPU per upstream delta fell
 * from 0.094–0.097 to 0.087–0.088 ms (bench/README.md, "Fourth pass").
 *
 * Only what the SDK sends to the Messages API is handled here: a string or
 * byte body (or none), over http: or https:. Anything else (a `Request`, a
 * stream or form body) goes to the global fetch. Redirects are not followed
 * (the API does not redirect; the SDK reports a 3xx as an error). A compressed
 * body is decompressed, as fetch does.
 */
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';

/** Statuses whose response may not carry a body (the `Response` constructor refuses one). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

type Body = string | Uint8Array | undefined | null;

export interface UpstreamFetch {
  fetch: typeof globalThis.fetch;
  /** Closes the kept-alive connections. */
  close(): void;
}

export function createUpstreamFetch(options: { idleSocketMs?: number } = {}): UpstreamFetch {
  const idle = options.idleSocketMs ?? 4_000;
  const agents: Record<string, http.Agent> = {
    'http:': new http.Agent({ keepAlive: true, timeout: idle }),
    'https:': new https.Agent({ keepAlive: true, timeout: idle }),
  };

  function request(url: URL, init: RequestInit & { body?: Body }): Promise<Response> {
    const { signal } = init;
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => {
      headers[name] = value;
    });
    const body = typeof init.body === 'string' ? Buffer.from(init.body) : init.body ?? undefined;
    if (body) headers['content-length'] = String(body.byteLength);
    const client = url.protocol === 'https:' ? https : http;

    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(abortError(signal));
      const req = client.request(url, { method: init.method ?? 'GET', headers, agent: agents[url.protocol] });
      let response: http.IncomingMessage | undefined;
      // Before the response the promise rejects with the AbortError; after it, the body errors with it, as fetch's does.
      const onAbort = () => {
        const err = abortError(signal!);
        response?.destroy(err);
        req.destroy(err);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => signal?.removeEventListener('abort', onAbort);
      req.on('error', (err) => {
        done();
        reject(err);
      });
      req.on('response', (res) => {
        response = res;
        res.on('close', done);
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (value !== undefined) responseHeaders.set(name, Array.isArray(value) ? value.join(', ') : value);
        }
        const status = res.statusCode ?? 502;
        const empty = NULL_BODY.has(status) || init.method === 'HEAD';
        if (empty) res.resume();
        resolve(
          new Response(empty ? null : (Readable.toWeb(decoded(res)) as ReadableStream<Uint8Array>), {
            status,
            statusText: res.statusMessage ?? '',
            headers: responseHeaders,
          }),
        );
      });
      req.end(body);
    });
  }

  const upstreamFetch = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = typeof input === 'string' ? new URL(input) : input instanceof URL ? input : undefined;
    const plainBody = init.body === undefined || init.body === null || typeof init.body === 'string' || init.body instanceof Uint8Array;
    if (!url || !plainBody || !(url.protocol in agents)) return globalThis.fetch(input, init);
    return request(url, init as RequestInit & { body?: Body });
  };

  return {
    fetch: upstreamFetch as typeof globalThis.fetch,
    close() {
      for (const agent of Object.values(agents)) agent.destroy();
    },
  };
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  return new DOMException('This operation was aborted', 'AbortError');
}

/** The body as fetch gives it: decompressed when the server compressed it. */
function decoded(res: http.IncomingMessage): Readable {
  const encoding = String(res.headers['content-encoding'] ?? '').trim().toLowerCase();
  const decoder =
    encoding === 'gzip' || encoding === 'x-gzip'
      ? zlib.createGunzip()
      : encoding === 'deflate'
        ? zlib.createInflate()
        : encoding === 'br'
          ? zlib.createBrotliDecompress()
          : undefined;
  if (!decoder) return res;
  res.on('error', (err) => decoder.destroy(err));
  return res.pipe(decoder);
}
