import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import Anthropic from '@anthropic-ai/sdk';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createUpstreamFetch, type UpstreamFetch } from './upstream-fetch.js';
import { createAnthropicCompatibleServer } from '../../../dev/offline-model/server.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

let server: http.Server;
let url: string;
let handler: Handler;
let connections: number;
let client: UpstreamFetch;

beforeEach(async () => {
  connections = 0;
  server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => handler(req, res, body));
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  client = createUpstreamFetch();
});

afterEach(async () => {
  client.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the upstream fetch (node:http for the SDK)', () => {
  it('sends method, headers and body, and gives status, headers and a body readable before the server ends it', async () => {
    let seen: { method?: string; type?: string; length?: string; body?: string } = {};
    let finish: () => void = () => undefined;
    handler = (req, res, body) => {
      seen = { method: req.method, type: req.headers['content-type'], length: req.headers['content-length'], body };
      res.writeHead(201, 'Made', { 'content-type': 'text/event-stream', 'x-request-id': 'r1' });
      res.write('first\n\n');
      finish = () => res.end('second\n\n');
    };
    const res = await client.fetch(`${url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"é":1}' });
    expect(seen).toEqual({ method: 'POST', type: 'application/json', length: String(Buffer.byteLength('{"é":1}')), body: '{"é":1}' });
    expect([res.status, res.statusText, res.headers.get('x-request-id')]).toEqual([201, 'Made', 'r1']);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe('first\n\n'); // the server has not ended the body yet
    finish();
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    expect(rest).toBe('second\n\n');
  });

  it('keeps the connection alive between requests', async () => {
    handler = (_req, res) => res.end('ok');
    for (let i = 0; i < 3; i++) expect(await (await client.fetch(`${url}/x`)).text()).toBe('ok');
    expect(connections).toBe(1);
  });

  it('rejects with an AbortError when aborted before the response, and errors the body when aborted after it', async () => {
    handler = () => undefined; // never answers
    const early = new AbortController();
    const pending = client.fetch(`${url}/slow`, { signal: early.signal });
    await tick(20);
    early.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });

    let closed = false;
    handler = (req, res) => {
      res.on('close', () => (closed = true));
      res.write('part');
    };
    const late = new AbortController();
    const res = await client.fetch(`${url}/stream`, { signal: late.signal });
    const reader = res.body!.getReader();
    await reader.read();
    late.abort();
    await expect(reader.read()).rejects.toMatchObject({ name: 'AbortError' });
    await tick(50);
    expect(closed).toBe(true);

    await expect(client.fetch(`${url}/x`, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('gives a null body for 204, decompresses a gzip body, and rejects when nothing listens', async () => {
    handler = (req, res) => {
      if (req.url === '/empty') return void res.writeHead(204).end();
      res.writeHead(200, { 'content-encoding': 'gzip' }).end(gzipSync('packed text'));
    };
    const empty = await client.fetch(`${url}/empty`, { method: 'DELETE' });
    expect([empty.status, empty.body]).toEqual([204, null]);
    expect(await (await client.fetch(`${url}/packed`)).text()).toBe('packed text');

    const closedPort = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    client.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await expect(client.fetch(`${closedPort}/x`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    server = http.createServer().listen(0); // for afterEach
  });

  it('leaves other bodies to the global fetch', async () => {
    handler = (_req, res, body) => res.end(`got ${body}`);
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('streamed'));
        c.close();
      },
    });
    const res = await client.fetch(`${url}/x`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(await res.text()).toBe('got streamed');
  });

  it('carries a streamed answer of the SDK end to end', async () => {
    const model = await createAnthropicCompatibleServer({ deltaDelayMs: 0 });
    try {
      const anthropic = new Anthropic({ apiKey: randomUUID(), baseURL: model.url, maxRetries: 0, fetch: client.fetch });
      const events = await anthropic.messages.create({ model: 'm', max_tokens: 50, messages: [{ role: 'user', content: 'hello' }], stream: true });
      const types: string[] = [];
      let text = '';
      for await (const e of events) {
        types.push(e.type);
        if (e.type === 'content_block_delta' && e.delta.type === 'text_delta') text += e.delta.text;
      }
      expect(types[0]).toBe('message_start');
      expect(types.at(-1)).toBe('message_stop');
      expect(text.length).toBeGreaterThan(0);
      // An API error comes back as the SDK's error, with its status.
      const bad = new Anthropic({ apiKey: randomUUID(), baseURL: model.url, maxRetries: 0, fetch: client.fetch });
      await expect(bad.messages.create({ model: 'm', max_tokens: 5, messages: [] })).rejects.toBeInstanceOf(Anthropic.APIError);
    } finally {
      await model.close();
    }
  });
});
