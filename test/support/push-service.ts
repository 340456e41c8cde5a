/**
 * The two ends of Web Push that are not ours, for tests: a push service that
 * records what it is sent, and a browser's subscription that decrypts it.
 *
 * The push service speaks HTTPS because `web-push` speaks nothing else (it
 * calls `https.request` whatever the endpoint's scheme). Its certificate is
 * made at run time by `openssl` (Debian's, which PostgreSQL's packages already
 * pull in) for 127.0.0.1, and the sender trusts it through the documented
 * `agent` option of `sendNotification`: an `https.Agent` whose `ca` is that
 * certificate. Certificate checking stays on; nothing is patched globally.
 * A server process trusts it the way an operator trusts a private CA: Node's
 * own NODE_EXTRA_CA_CERTS, read by Node at startup (not by our config).
 *
 * The browser's side is written here from the RFCs with node:crypto, not
 * with the library under test: keys as `PushManager.subscribe()` makes them
 * (a P-256 key pair and a 16-byte secret), decryption of aes128gcm (RFC 8188,
 * RFC 8291) and the check of the VAPID header (RFC 8292).
 */
import { execFileSync } from 'node:child_process';
import { createECDH, createDecipheriv, createPublicKey, hkdfSync, randomBytes, verify } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface ReceivedPush {
  /** the request path: which subscription it was for */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** the status this service answered */
  status: number;
}

export interface LocalPushService extends AsyncDisposable {
  /** https://127.0.0.1:<port> */
  origin: string;
  /** A fresh endpoint URL of this service (a random path, as real push services give). */
  endpoint(): string;
  /** every POST received, in order */
  received: ReceivedPush[];
  /** the pushes received for `endpoint` */
  receivedBy(endpoint: string): ReceivedPush[];
  /** From now on, answer pushes to `endpoint` with `status` (default 201). */
  answer(endpoint: string, status: number): void;
  /** Holds every answer this long (ms), to see how many pushes are in flight at once. */
  delayAnswers(ms: number): void;
  /** the most requests that were open at the same time */
  maxConcurrent(): number;
  /** the agent that trusts this service's certificate */
  agent: https.Agent;
  /** this service's certificate (PEM), for a server process to trust through NODE_EXTRA_CA_CERTS */
  certificate: string;
  close(): Promise<void>;
}

/** A self-signed certificate for 127.0.0.1, made now. */
function selfSignedCertificate(): { key: string; cert: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sam-push-'));
  try {
    const keyFile = path.join(dir, 'key.pem');
    const certFile = path.join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
      { stdio: 'pipe' },
    );
    return { key: fs.readFileSync(keyFile, 'utf8'), cert: fs.readFileSync(certFile, 'utf8') };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function startLocalPushService(): Promise<LocalPushService> {
  const { key, cert } = selfSignedCertificate();
  const received: ReceivedPush[] = [];
  const answers = new Map<string, number>();
  let delayMs = 0;
  let open = 0;
  let maxOpen = 0;
  const server = https.createServer({ key, cert }, (req, res) => {
    open++;
    maxOpen = Math.max(maxOpen, open);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const pathname = req.url ?? '/';
      const status = req.method === 'POST' ? (answers.get(pathname) ?? 201) : 405;
      received.push({ path: pathname, headers: req.headers, body: Buffer.concat(chunks), status });
      setTimeout(() => {
        open--;
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 201 ? '' : 'no such subscription');
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const agent = new https.Agent({ ca: cert, keepAlive: true });
  const pathOf = (endpoint: string) => new URL(endpoint).pathname;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    agent.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    origin,
    endpoint: () => `${origin}/push/v2/${randomBytes(24).toString('base64url')}`,
    received,
    receivedBy: (endpoint) => received.filter((r) => r.path === pathOf(endpoint)),
    answer: (endpoint, status) => void answers.set(pathOf(endpoint), status),
    delayAnswers: (ms) => void (delayMs = ms),
    maxConcurrent: () => maxOpen,
    agent,
    certificate: cert,
    close,
    [Symbol.asyncDispose]: close,
  };
}

export interface BrowserSubscription {
  /** what `PushSubscription.toJSON()` gives, as the client sends it in `push:subscribe` */
  json: { endpoint: string; expirationTime: null; keys: { p256dh: string; auth: string } };
  /** Decrypts an aes128gcm push body (RFC 8291 §3.4, RFC 8188 §2) as the browser would. */
  decrypt(body: Buffer): string;
}

/** A browser's subscription at `endpoint`, with fresh keys. */
export function browserSubscription(endpoint: string): BrowserSubscription {
  const ecdh = createECDH('prime256v1');
  const uaPublic = ecdh.generateKeys();
  const authSecret = randomBytes(16);
  return {
    json: { endpoint, expirationTime: null, keys: { p256dh: uaPublic.toString('base64url'), auth: authSecret.toString('base64url') } },
    decrypt(body) {
      // Header: salt (16) | record size (4) | key id length (1) | key id = the sender's ephemeral public key.
      const salt = body.subarray(0, 16);
      const recordSize = body.readUInt32BE(16);
      const idLength = body[20]!;
      const asPublic = body.subarray(21, 21 + idLength);
      const record = body.subarray(21 + idLength);
      if (record.length > recordSize) throw new Error('more than one record');
      const ecdhSecret = ecdh.computeSecret(asPublic);
      const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), uaPublic, asPublic]);
      const ikm = Buffer.from(hkdfSync('sha256', ecdhSecret, authSecret, keyInfo, 32));
      const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
      const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
      const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
      decipher.setAuthTag(record.subarray(-16));
      const padded = Buffer.concat([decipher.update(record.subarray(0, -16)), decipher.final()]);
      // The last record ends with the delimiter 0x02, then zero padding.
      let end = padded.length - 1;
      while (end >= 0 && padded[end] === 0) end--;
      if (padded[end] !== 2) throw new Error('no last-record delimiter');
      return padded.subarray(0, end).toString('utf8');
    },
  };
}

export interface VapidClaims {
  aud: string;
  exp: number;
  sub: string;
}

/**
 * Checks an `Authorization: vapid t=<JWT>, k=<key>` header (RFC 8292 §3):
 * `k` must be `publicKey`, and the JWT an ES256 signature by it. Returns the
 * claims; throws when anything does not hold.
 */
export function verifyVapid(authorization: string | string[] | undefined, publicKey: string): VapidClaims {
  const match = /^vapid t=([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+), k=([A-Za-z0-9_-]+)$/.exec(String(authorization));
  if (!match) throw new Error(`not a VAPID header: ${String(authorization)}`);
  const [, jwt, k] = match as unknown as [string, string, string];
  if (k !== publicKey) throw new Error('k is not the server public key');
  const [header, payload, signature] = jwt.split('.') as [string, string, string];
  const alg = (JSON.parse(Buffer.from(header, 'base64url').toString()) as { alg: string }).alg;
  if (alg !== 'ES256') throw new Error(`alg ${alg}`);
  const point = Buffer.from(k, 'base64url');
  const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') }, format: 'jwk' });
  const ok = verify('sha256', Buffer.from(`${header}.${payload}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'));
  if (!ok) throw new Error('the VAPID signature does not verify');
  return JSON.parse(Buffer.from(payload, 'base64url').toString()) as VapidClaims;
}
