/**
 * Web Push of reminders (issue 20 item 3): the notifier against this run's
 * PostgreSQL and a local push service (test/support/push-service.ts: HTTPS on
 * 127.0.0.1 with a certificate made at run time, because `web-push` speaks
 * only HTTPS; the sender trusts it through `web-push`'s documented `agent`
 * option). Each push is decrypted as a browser would, with keys the test made,
 * and its VAPID signature is checked against keys generated at run time.
 *
 * Then the three `push:*` events end to end: a production server as a real
 * process (`npm run build` first) with VAPID keys made now, which trusts the
 * local push service's certificate the way an operator trusts a private CA
 * (Node's NODE_EXTRA_CA_CERTS), and real socket.io-client tabs. A reminder
 * that fires while the user has no tab open reaches the subscribed browser.
 * The file's database is its own, so no other file's node fires its reminders.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import webpush from 'web-push';
import { MikroORM } from '@mikro-orm/postgresql';
import type { Config } from '../server/config.js';
import { ormOptions } from '../server/db/orm.js';
import { createPostgres, type Sql } from '../server/db/postgres.js';
import { AppError, ErrorCode } from '../server/errors.js';
import { createLogger } from '../server/logger.js';
import { UserSchema } from '../server/features/auth/user.entity.js';
import { createPushRepository } from '../server/features/reminders/push.repository.js';
import { createPushNotifier, MAX_PUSH_SUBSCRIPTIONS_PER_USER, MAX_PUSHES_IN_FLIGHT, PUSH_TTL_SECONDS, type PushNotifier } from '../server/features/reminders/push.js';
import type { Reminder } from '../shared/schemas/reminders.js';
import { productionEnv, testDatabaseUrl } from './support/env.js';
import { browserSubscription, startLocalPushService, verifyVapid, type LocalPushService } from './support/push-service.js';
import { startNodeProcess, startTestApp, type NodeProcess } from './support/app.js';
import { connectReady, tabTracker, type Tab } from './support/sockets.js';
import { signUp } from './support/users.js';
import { until } from './support/until.js';

let orm: MikroORM;
let pg: Sql;
let service: LocalPushService;

beforeAll(async () => {
  orm = await MikroORM.init(ormOptions({ databaseUrl: testDatabaseUrl() }));
  pg = createPostgres(testDatabaseUrl(), { max: 4 });
  service = await startLocalPushService();
});
afterAll(async () => {
  await service?.close();
  await orm?.close(true);
  await pg?.end();
});

const subject = 'mailto:ops@example.test';

function logSink() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  return { lines, logger: createLogger({ level: 'debug', nodeId: 'push-test', destination }) };
}

interface Fixture {
  push: PushNotifier;
  keys: { publicKey: string; privateKey: string };
  logs: string[];
}

/** A notifier with VAPID keys made now, sending to the local push service (or, with `vapid: false`, unconfigured). */
function fixture(options: { vapid?: boolean } = {}): Fixture {
  const keys = webpush.generateVAPIDKeys();
  const config: Pick<Config, 'vapid'> = { vapid: options.vapid === false ? null : { ...keys, subject } };
  const { lines, logger } = logSink();
  return { push: createPushNotifier({ repository: createPushRepository(pg), config, logger, agent: service.agent }), keys, logs: lines };
}

async function newUser(): Promise<string> {
  const em = orm.em.fork();
  const user = em.create(UserSchema, { id: randomUUID(), email: `${randomUUID()}@example.test`, passwordHash: 'x' });
  await em.flush();
  return user.id;
}

const reminder = (title = 'Call the dentist'): Reminder => ({
  id: randomUUID(),
  taskId: randomUUID(),
  title,
  firesAt: new Date().toISOString(),
  late: false,
  state: 'due',
});

interface StoredSubscription {
  userId: string;
  endpoint: string;
  p256dh: string;
  auth: string;
  userAgent: string | null;
  createdAt: Date;
  lastSuccessAt: Date | null;
}

const stored = (where: { userId?: string; endpoint?: string }) =>
  where.endpoint
    ? pg<StoredSubscription[]>`select * from push_subscriptions where endpoint = ${where.endpoint}`
    : pg<StoredSubscription[]>`select * from push_subscriptions where user_id = ${where.userId!} order by created_at, id`;

const expectedPayload = (r: Reminder) => ({ title: 'Reminder', body: r.title, reminderId: r.id, taskId: r.taskId, url: '/' });

async function failure(promise: Promise<unknown>, code: ErrorCode): Promise<AppError> {
  const err = await promise.then(
    () => new Error('expected the call to fail'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  expect((err as AppError).code).toBe(code);
  return err as AppError;
}

describe('Web Push notifier', () => {
  it('sends the reminder encrypted for the browser, signed with the VAPID key, with a one-hour TTL and high urgency', async () => {
    const { push, keys } = fixture();
    const userId = await newUser();
    const browser = browserSubscription(service.endpoint());
    expect(push.publicKey()).toBe(keys.publicKey);
    await push.subscribe(userId, browser.json, 'Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0');
    const [row] = await stored({ userId });
    expect(row).toMatchObject({ endpoint: browser.json.endpoint, p256dh: browser.json.keys.p256dh, auth: browser.json.keys.auth, userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0', lastSuccessAt: null });

    const r = reminder('Call the dentist — about the crown 🦷');
    const before = Math.floor(Date.now() / 1000);
    expect(await push.notify(userId, r)).toEqual({ sent: 1, gone: 0, failed: 0 });

    const [received, ...more] = service.receivedBy(browser.json.endpoint);
    expect(more).toHaveLength(0);
    expect(received!.headers['content-encoding']).toBe('aes128gcm');
    expect(received!.headers['ttl']).toBe(String(PUSH_TTL_SECONDS));
    expect(received!.headers['urgency']).toBe('high');
    expect(JSON.parse(browser.decrypt(received!.body))).toEqual(expectedPayload(r));
    // The body is ciphertext: the title does not show through.
    expect(received!.body.includes(Buffer.from('dentist'))).toBe(false);

    const claims = verifyVapid(received!.headers['authorization'], keys.publicKey);
    expect(claims.aud).toBe(service.origin);
    expect(claims.sub).toBe(subject);
    expect(claims.exp).toBeGreaterThan(before);
    expect(claims.exp).toBeLessThanOrEqual(before + 24 * 3600 + 5);
    // Another key pair's public key does not verify it.
    expect(() => verifyVapid(received!.headers['authorization'], webpush.generateVAPIDKeys().publicKey)).toThrow();

    const [after] = await stored({ userId });
    expect(after!.lastSuccessAt).toBeInstanceOf(Date);
  });

  it("each of a user's subscriptions gets the reminder once, in its own keys; another user's gets nothing", async () => {
    const { push } = fixture();
    const [alice, bob] = [await newUser(), await newUser()];
    const alices = [0, 1, 2].map(() => browserSubscription(service.endpoint()));
    const bobs = browserSubscription(service.endpoint());
    for (const b of alices) await push.subscribe(alice, b.json, undefined);
    await push.subscribe(bob, bobs.json, undefined);

    const r = reminder();
    expect(await push.notify(alice, r)).toEqual({ sent: 3, gone: 0, failed: 0 });
    for (const b of alices) {
      const got = service.receivedBy(b.json.endpoint);
      expect(got).toHaveLength(1);
      expect(JSON.parse(b.decrypt(got[0]!.body))).toEqual(expectedPayload(r));
    }
    // Encrypted for one browser, a push is unreadable by another.
    expect(() => alices[1]!.decrypt(service.receivedBy(alices[0]!.json.endpoint)[0]!.body)).toThrow();
    expect(service.receivedBy(bobs.json.endpoint)).toHaveLength(0);
    expect(await push.notify(bob, reminder())).toEqual({ sent: 1, gone: 0, failed: 0 });
    for (const b of alices) expect(service.receivedBy(b.json.endpoint)).toHaveLength(1);
  });

  it('a 410 or 404 from the push service deletes that subscription only; a 500 or an unreachable service keeps it, logs a warning without the endpoint, and nothing throws', async () => {
    const { push, logs } = fixture();
    const userId = await newUser();
    const [ok, gone, notFound, broken] = [0, 1, 2, 3].map(() => browserSubscription(service.endpoint())) as [
      ReturnType<typeof browserSubscription>,
      ReturnType<typeof browserSubscription>,
      ReturnType<typeof browserSubscription>,
      ReturnType<typeof browserSubscription>,
    ];
    // A port nothing listens on: the push service cannot be reached.
    const unreachable = browserSubscription(`https://127.0.0.1:9/push/v2/${randomUUID()}`);
    for (const b of [ok, gone, notFound, broken, unreachable]) await push.subscribe(userId, b.json, undefined);
    service.answer(gone.json.endpoint, 410);
    service.answer(notFound.json.endpoint, 404);
    service.answer(broken.json.endpoint, 500);

    expect(await push.notify(userId, reminder())).toEqual({ sent: 1, gone: 2, failed: 2 });
    const left = (await stored({ userId })).map((s) => s.endpoint);
    expect(left.sort()).toEqual([ok.json.endpoint, broken.json.endpoint, unreachable.json.endpoint].sort());

    // The deleted ones get nothing more; the kept ones are tried again.
    await push.notify(userId, reminder());
    expect(service.receivedBy(gone.json.endpoint)).toHaveLength(1);
    expect(service.receivedBy(notFound.json.endpoint)).toHaveLength(1);
    expect(service.receivedBy(broken.json.endpoint)).toHaveLength(2);
    expect(service.receivedBy(ok.json.endpoint)).toHaveLength(2);

    const records = logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const warnings = records.filter((r) => r.level === 'warn');
    expect(warnings.filter((w) => w.msg === 'push refused' && w.status === 500 && w.pushService === service.origin)).toHaveLength(2);
    expect(warnings.filter((w) => w.msg === 'push failed' && w.pushService === 'https://127.0.0.1:9' && w.code === 'ECONNREFUSED')).toHaveLength(2);
    expect(records.filter((r) => r.msg === 'push subscription gone; deleted')).toHaveLength(2);
    // The endpoint's path (the subscription's capability) and the keys are never logged.
    for (const b of [ok, gone, notFound, broken, unreachable]) {
      const secret = new URL(b.json.endpoint).pathname;
      for (const line of logs) {
        expect(line).not.toContain(secret);
        expect(line).not.toContain(b.json.keys.auth);
        expect(line).not.toContain(b.json.keys.p256dh);
      }
    }
  });

  it('sends concurrently, but never more than MAX_PUSHES_IN_FLIGHT at once', async () => {
    const { push } = fixture();
    const [alice, bob] = [await newUser(), await newUser()];
    // Its own push service, so that other tests' pushes do not count.
    await using own = await startLocalPushService();
    const sender = createPushNotifier({
      repository: createPushRepository(pg),
      config: { vapid: { ...webpush.generateVAPIDKeys(), subject } },
      logger: logSink().logger,
      agent: own.agent,
    });
    const n = MAX_PUSH_SUBSCRIPTIONS_PER_USER;
    for (let i = 0; i < n; i++) {
      await push.subscribe(alice, browserSubscription(own.endpoint()).json, undefined);
      await push.subscribe(bob, browserSubscription(own.endpoint()).json, undefined);
    }
    // Each answer is held long enough for every free slot to fill first, even on a busy machine.
    own.delayAnswers(500);
    const outcomes = await Promise.all([sender.notify(alice, reminder()), sender.notify(bob, reminder())]);
    expect(outcomes).toEqual([
      { sent: n, gone: 0, failed: 0 },
      { sent: n, gone: 0, failed: 0 },
    ]);
    expect(own.received).toHaveLength(2 * n);
    // Two users' reminders share the node's slots: all of them busy, none more.
    expect(own.maxConcurrent()).toBe(MAX_PUSHES_IN_FLIGHT);
  });

  it('a subscribe of an endpoint another user had moves it to the new user, with the new keys', async () => {
    const { push, logs } = fixture();
    const [alice, bob] = [await newUser(), await newUser()];
    const endpoint = service.endpoint();
    const asAlice = browserSubscription(endpoint);
    await push.subscribe(alice, asAlice.json, 'Alice Browser');
    await push.notify(alice, reminder());
    // Bob signs in on the same browser profile: same endpoint, new keys.
    const asBob = browserSubscription(endpoint);
    await push.subscribe(bob, asBob.json, 'Bob Browser');

    expect(await stored({ userId: alice })).toEqual([]);
    const [row, ...others] = await stored({ endpoint });
    expect(others).toHaveLength(0);
    expect(row).toMatchObject({ userId: bob, p256dh: asBob.json.keys.p256dh, auth: asBob.json.keys.auth, userAgent: 'Bob Browser', lastSuccessAt: null });

    expect(await push.notify(alice, reminder())).toEqual({ sent: 0, gone: 0, failed: 0 });
    const r = reminder('Bob only');
    expect(await push.notify(bob, r)).toEqual({ sent: 1, gone: 0, failed: 0 });
    const got = service.receivedBy(endpoint);
    expect(got).toHaveLength(2);
    expect(JSON.parse(asBob.decrypt(got[1]!.body))).toEqual(expectedPayload(r));
    const moved = logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'push subscription moved to another user');
    expect(moved).toEqual([expect.objectContaining({ userId: bob, previousUserId: alice })]);
  });

  it('subscribing again from the same browser keeps one subscription, with its latest keys', async () => {
    const { push } = fixture();
    const userId = await newUser();
    const endpoint = service.endpoint();
    await push.subscribe(userId, browserSubscription(endpoint).json, undefined);
    await push.notify(userId, reminder());
    const [first] = await stored({ userId });
    const renewed = browserSubscription(endpoint);
    await push.subscribe(userId, renewed.json, undefined);
    const rows = await stored({ userId });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ p256dh: renewed.json.keys.p256dh, auth: renewed.json.keys.auth, createdAt: first!.createdAt, lastSuccessAt: null });
    const r = reminder();
    await push.notify(userId, r);
    expect(JSON.parse(renewed.decrypt(service.receivedBy(endpoint).at(-1)!.body))).toEqual(expectedPayload(r));
  });

  it("unsubscribe deletes only the user's own subscription", async () => {
    const { push } = fixture();
    const [alice, bob] = [await newUser(), await newUser()];
    const browser = browserSubscription(service.endpoint());
    await push.subscribe(alice, browser.json, undefined);
    await push.unsubscribe(bob, browser.json.endpoint);
    expect(await stored({ userId: alice })).toHaveLength(1);
    await push.unsubscribe(alice, `${browser.json.endpoint}x`);
    expect(await stored({ userId: alice })).toHaveLength(1);
    await push.unsubscribe(alice, browser.json.endpoint);
    expect(await stored({ endpoint: browser.json.endpoint })).toEqual([]);
    expect(await push.notify(alice, reminder())).toEqual({ sent: 0, gone: 0, failed: 0 });
    expect(service.receivedBy(browser.json.endpoint)).toHaveLength(0);
  });

  it(`keeps a user's ${MAX_PUSH_SUBSCRIPTIONS_PER_USER} newest subscriptions`, async () => {
    const { push } = fixture();
    const userId = await newUser();
    const endpoints = Array.from({ length: MAX_PUSH_SUBSCRIPTIONS_PER_USER + 3 }, () => service.endpoint());
    for (const endpoint of endpoints) await push.subscribe(userId, browserSubscription(endpoint).json, undefined);
    const rows = await stored({ userId });
    expect(rows.map((r) => r.endpoint)).toEqual(endpoints.slice(3));
  });

  it('refuses a subscription that could never be pushed to: not https, keys that are no P-256 point or no 16-byte secret', async () => {
    const { push } = fixture();
    const userId = await newUser();
    const good = browserSubscription(service.endpoint()).json;
    const point = Buffer.from(good.keys.p256dh, 'base64url');
    const offCurve = Buffer.from(point);
    offCurve[64] = offCurve[64]! ^ 1;
    const cases: [typeof good, string][] = [
      [{ ...good, endpoint: good.endpoint.replace('https:', 'http:') }, 'endpoint'],
      [{ ...good, endpoint: `${service.origin}/${'é'.repeat(1100)}` }, 'endpoint'],
      [{ ...good, keys: { ...good.keys, p256dh: offCurve.toString('base64url') } }, 'keys.p256dh'],
      [{ ...good, keys: { ...good.keys, p256dh: point.subarray(1).toString('base64url') } }, 'keys.p256dh'],
      [{ ...good, keys: { ...good.keys, p256dh: 'not base64!' } }, 'keys.p256dh'],
      [{ ...good, keys: { ...good.keys, auth: Buffer.alloc(15, 1).toString('base64url') } }, 'keys.auth'],
      [{ ...good, keys: { ...good.keys, auth: Buffer.alloc(17, 1).toString('base64url') } }, 'keys.auth'],
    ];
    for (const [sub, path] of cases) {
      const err = await failure(push.subscribe(userId, sub, undefined), ErrorCode.VALIDATION);
      expect(err.issues?.map((i) => i.path), path).toEqual([path]);
    }
    expect(await stored({ userId })).toEqual([]);
    // Padded base64url is accepted and stored as browsers write it.
    await push.subscribe(userId, { ...good, keys: { p256dh: `${good.keys.p256dh}=`, auth: `${good.keys.auth}==` } }, undefined);
    expect(await stored({ userId })).toEqual([expect.objectContaining({ p256dh: good.keys.p256dh, auth: good.keys.auth })]);
  });

  it('without VAPID configuration: no public key, nothing stored, nothing sent', async () => {
    const on = fixture();
    const off = fixture({ vapid: false });
    const userId = await newUser();
    const browser = browserSubscription(service.endpoint());
    expect(off.push.publicKey()).toBeNull();
    await off.push.subscribe(userId, browser.json, undefined);
    expect(await stored({ userId })).toEqual([]);
    // Even a subscription stored while it was on is not pushed to.
    await on.push.subscribe(userId, browser.json, undefined);
    expect(await off.push.notify(userId, reminder())).toEqual({ sent: 0, gone: 0, failed: 0 });
    expect(service.receivedBy(browser.json.endpoint)).toHaveLength(0);
    expect(off.logs).toEqual([]);
  });

  it('a long title is shortened to a notification body, the payload staying small', async () => {
    const { push } = fixture();
    const userId = await newUser();
    const browser = browserSubscription(service.endpoint());
    await push.subscribe(userId, browser.json, undefined);
    const r = reminder('🦷'.repeat(250));
    await push.notify(userId, r);
    const payload = JSON.parse(browser.decrypt(service.receivedBy(browser.json.endpoint)[0]!.body)) as { body: string };
    expect(Array.from(payload.body)).toHaveLength(200);
    expect(payload.body.endsWith('🦷…')).toBe(true);
  });

  it('deleting the user deletes their subscriptions', async () => {
    const { push } = fixture();
    const userId = await newUser();
    const browser = browserSubscription(service.endpoint());
    await push.subscribe(userId, browser.json, undefined);
    await pg`delete from users where id = ${userId}`;
    expect(await stored({ endpoint: browser.json.endpoint })).toEqual([]);
  });
});

describe('push:key, push:subscribe, push:unsubscribe on a production node', () => {
  const vapid = webpush.generateVAPIDKeys();
  const tabs = tabTracker();
  let node: NodeProcess;
  let certDir: string;

  beforeAll(async () => {
    certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sam-push-ca-'));
    const caFile = path.join(certDir, 'push-service.pem');
    fs.writeFileSync(caFile, service.certificate);
    node = await startNodeProcess(
      productionEnv({
        ...recordingModules('with-vapid'),
        VAPID_PUBLIC_KEY: vapid.publicKey,
        VAPID_PRIVATE_KEY: vapid.privateKey,
        VAPID_SUBJECT: subject,
        NODE_EXTRA_CA_CERTS: caFile,
        SOCKET_EVENTS_PER_MINUTE: '100000',
        RATE_LIMIT_PER_MINUTE: '10000',
      }),
    );
  });
  afterAll(async () => {
    tabs.closeAll();
    await node?.stop();
    if (certDir) fs.rmSync(certDir, { recursive: true, force: true });
  });

  /** Records the URL of every module the node loads (test/support/loaded-modules.mjs) in a file named after `name`. */
  function recordingModules(name: string) {
    const hook = pathToFileURL(path.resolve(import.meta.dirname, 'support/loaded-modules.mjs')).href;
    return { NODE_OPTIONS: `--import=${hook}`, LOADED_MODULES_FILE: path.join(certDir, `${name}.txt`) };
  }
  const webPushModules = (name: string) =>
    fs.readFileSync(path.join(certDir, `${name}.txt`), 'utf8').split('\n').filter((url) => url.includes('/node_modules/web-push/'));

  const userWithTab = async () => {
    const user = await signUp(node.url);
    return { id: user.auth.user.id, tab: tabs.track(await connectReady(node.url, user.auth.accessToken)) };
  };
  const rowsOf = (userId: string) => pg<{ endpoint: string; p256dh: string; auth: string }[]>`select endpoint, p256dh, auth from push_subscriptions where user_id = ${userId}`;

  it('push:key answers the VAPID public key; a reminder that fires with no tab open reaches each subscribed browser once, and no other user', async () => {
    const alice = await userWithTab();
    const bob = await userWithTab();
    expect(await alice.tab.call('push:key', {})).toEqual({ publicKey: vapid.publicKey });

    const laptop = browserSubscription(service.endpoint());
    const phone = browserSubscription(service.endpoint());
    const bobs = browserSubscription(service.endpoint());
    expect(await alice.tab.call('push:subscribe', laptop.json)).toEqual({});
    expect(await alice.tab.call('push:subscribe', phone.json)).toEqual({});
    expect(await bob.tab.call('push:subscribe', bobs.json)).toEqual({});
    expect((await rowsOf(alice.id)).map((r) => r.endpoint).sort()).toEqual([laptop.json.endpoint, phone.json.endpoint].sort());

    const remindAt = new Date(Date.now() + 2_000).toISOString();
    const { task } = await alice.tab.call('task:create', { title: 'Water the plants', remindAt });
    alice.tab.close();
    bob.tab.close();

    await until(async () => [laptop, phone].map((b) => service.receivedBy(b.json.endpoint).length), (n) => n.every((c) => c >= 1), 15_000, 'a push to each of alice’s browsers');
    const decrypted = [laptop, phone].map((b) => JSON.parse(b.decrypt(service.receivedBy(b.json.endpoint)[0]!.body)) as Record<string, unknown>);
    expect(decrypted[0]).toEqual({ title: 'Reminder', body: 'Water the plants', reminderId: expect.any(String), taskId: task.id, url: '/' });
    expect(decrypted[1]).toEqual(decrypted[0]);
    const pushed = service.receivedBy(laptop.json.endpoint)[0]!;
    expect(verifyVapid(pushed.headers['authorization'], vapid.publicKey)).toMatchObject({ aud: service.origin, sub: subject });
    expect(pushed.headers['urgency']).toBe('high');

    // Once each, and nothing to Bob; a duplicate would come from a later poll of the claim loop.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(service.receivedBy(laptop.json.endpoint)).toHaveLength(1);
    expect(service.receivedBy(phone.json.endpoint)).toHaveLength(1);
    expect(service.receivedBy(bobs.json.endpoint)).toHaveLength(0);
    // The node logged neither an endpoint's path nor a key.
    for (const b of [laptop, phone, bobs]) {
      for (const line of node.logs.lines) {
        expect(line).not.toContain(new URL(b.json.endpoint).pathname);
        expect(line).not.toContain(b.json.keys.auth);
      }
    }
  });

  it("push:unsubscribe removes only the caller's own subscription; subscribing another user's endpoint moves it", async () => {
    const alice = await userWithTab();
    const bob = await userWithTab();
    const browser = browserSubscription(service.endpoint());
    await alice.tab.call('push:subscribe', browser.json);
    expect(await bob.tab.call('push:unsubscribe', { endpoint: browser.json.endpoint })).toEqual({});
    expect(await rowsOf(alice.id)).toHaveLength(1);

    const asBob = browserSubscription(browser.json.endpoint);
    await bob.tab.call('push:subscribe', asBob.json);
    expect(await rowsOf(alice.id)).toEqual([]);
    expect(await rowsOf(bob.id)).toEqual([{ endpoint: browser.json.endpoint, p256dh: asBob.json.keys.p256dh, auth: asBob.json.keys.auth }]);
    expect(await alice.tab.call('push:unsubscribe', { endpoint: browser.json.endpoint })).toEqual({});
    expect(await rowsOf(bob.id)).toHaveLength(1);
    expect(await bob.tab.call('push:unsubscribe', { endpoint: browser.json.endpoint })).toEqual({});
    expect(await rowsOf(bob.id)).toEqual([]);
  });

  it('malformed, oversize and polluted payloads are VALIDATION and store nothing', async () => {
    const { id, tab } = await userWithTab();
    const good = browserSubscription(service.endpoint()).json;
    const offCurve = Buffer.from(good.keys.p256dh, 'base64url');
    offCurve[64] = offCurve[64]! ^ 1;
    const bad: [string, unknown][] = [
      ['push:subscribe', {}],
      ['push:subscribe', { ...good, endpoint: 'not a url' }],
      ['push:subscribe', { ...good, endpoint: good.endpoint.replace('https:', 'http:') }],
      ['push:subscribe', { ...good, endpoint: 'javascript:alert(1)' }],
      ['push:subscribe', { ...good, endpoint: `${service.origin}/${'a'.repeat(2100)}` }],
      ['push:subscribe', { ...good, keys: { auth: good.keys.auth } }],
      ['push:subscribe', { ...good, keys: { ...good.keys, p256dh: offCurve.toString('base64url') } }],
      ['push:subscribe', { ...good, keys: { ...good.keys, auth: 'x'.repeat(65) } }],
      ['push:subscribe', { ...good, extra: true }],
      ['push:subscribe', JSON.parse(`{"endpoint":${JSON.stringify(good.endpoint)},"keys":{"p256dh":"${good.keys.p256dh}","auth":"${good.keys.auth}","__proto__":{"polluted":true}}}`)],
      ['push:subscribe', [good]],
      ['push:subscribe', 'https://example.test'],
      ['push:unsubscribe', {}],
      ['push:unsubscribe', { endpoint: 'x'.repeat(2049) }],
      ['push:unsubscribe', { endpoint: 42 }],
      ['push:key', { extra: 1 }],
    ];
    for (const [event, payload] of bad) {
      const res = await (tab.socket.timeout(5_000) as any).emitWithAck(event, payload);
      expect(res, `${event} ${JSON.stringify(payload).slice(0, 80)}`).toMatchObject({ ok: false, error: { code: 'VALIDATION' } });
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(await rowsOf(id)).toEqual([]);
    // The socket still works.
    expect(await tab.call('push:subscribe', good)).toEqual({});
  });

  it('a node without VAPID keys never loads web-push; one with them does', async () => {
    const off = await startNodeProcess(productionEnv(recordingModules('without-vapid')));
    try {
      expect((await fetch(`${off.url}/health`)).status).toBe(200);
    } finally {
      expect(await off.stop()).toBe(0);
    }
    expect(webPushModules('without-vapid')).toEqual([]);
    expect(webPushModules('with-vapid')).not.toEqual([]);
  });

  it('without VAPID keys push:key answers null and push:subscribe stores nothing', async () => {
    await using app = await startTestApp(productionEnv());
    const user = await signUp(app.url);
    const tab: Tab = tabs.track(await connectReady(app.url, user.auth.accessToken));
    expect(await tab.call('push:key', {})).toEqual({ publicKey: null });
    expect(await tab.call('push:subscribe', browserSubscription(service.endpoint()).json)).toEqual({});
    expect(await tab.call('push:unsubscribe', { endpoint: service.endpoint() })).toEqual({});
    expect(await rowsOf(user.auth.user.id)).toEqual([]);
    tab.close();
  });
});
