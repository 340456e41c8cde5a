/**
 * Bad input through real sockets (PROTOCOL §1, RT-3, TASK-6, CONVENTIONS "Bad
 * input is a test"): for every client→server event, fast-check sends malformed,
 * oversize, extra-key, prototype-pollution, U+0000, beyond-2^53 and
 * another-user's-ids payloads. Every ack is a well-formed wire answer, the server
 * never crashes, logs no error, pollutes no prototype and leaves the other
 * user's data alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { z } from 'zod';
import { productionEnv, strongPassword } from './support/env.js';
import { startTestApp, type TestApp } from './support/app.js';
import { logIn, signUp, type SignedUp } from './support/users.js';
import { connectReady, type Tab } from './support/sockets.js';
import { requestEvents, requestSchemas, type RequestEvent } from '../shared/events.js';
import { ErrorCode, wireErrorSchema } from '../shared/errors.js';
import { limits } from '../shared/limits.js';
import { intensityClasses, openTaskStatuses, recurrenceTypes, taskViews } from '../shared/schemas/tasks.js';
import { searchKinds } from '../shared/schemas/chat.js';

/** Events whose feature is not built yet (they would be dropped unanswered): list them here to leave them out. */
const notYetImplemented = new Set<RequestEvent>([]);
const events = requestEvents.filter((e) => !notYetImplemented.has(e));

const RUNS = 50;
const ACK_TIMEOUT_MS = 5_000;

let app: TestApp;
let attacker: SignedUp;
let victim: SignedUp;
let tab: Tab & { ready: any };
let victimTab: Tab & { ready: any };
let victimSecondTab: Tab & { ready: any };
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
const prototypeKeysBefore = Object.getOwnPropertyNames(Object.prototype).sort();

/** What the attacker may name: the victim's ids and secrets, and the attacker's own tasks. */
const ids = {
  victimTasks: [] as string[],
  victimSessions: [] as string[],
  victimProject: 'Victim project',
  victimConversation: '',
  victimMessages: [] as string[],
  ownTasks: [] as string[],
  victimReminders: [] as string[],
};

/** The victim's whole visible state; must not change whatever the attacker sends. */
async function victimState(): Promise<unknown> {
  const [me, sync, sessions, conversations, history, reminders, ...views] = await Promise.all([
    victimTab.call('user:me', {}),
    victimTab.call('task:sync', { since: 0 }),
    victimTab.call('session:list', {}),
    victimTab.call('conversation:list', {}),
    victimTab.call('chat:history', { conversationId: ids.victimConversation }),
    victimTab.call('reminder:list', {}),
    ...taskViews.map((view) => victimTab.call('task:list', { view })),
  ]);
  return { me, sync, sessions: sessions.sessions.map(({ lastUsedAt: _ignored, ...s }) => s), conversations, history, reminders, views };
}
let victimBefore: unknown;

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  // user:delete's wrong passwords count toward the lockout (AUTH-4, test/lockout.test.ts); here they are payloads.
  app = await startTestApp(productionEnv({ SOCKET_EVENTS_PER_MINUTE: '100000', CHAT_MESSAGES_PER_MINUTE: '100000', RATE_LIMIT_PER_MINUTE: '10000', LOGIN_MAX_FAILURES: '1000' }));
  victim = await signUp(app.url, { fullName: 'Victim', timezone: 'Europe/Paris' });
  const victimAgain = await logIn(app.url, victim.email, victim.password);
  attacker = await signUp(app.url, { fullName: 'Attacker' });
  victimTab = await connectReady(app.url, victim.auth.accessToken);
  victimSecondTab = await connectReady(app.url, victimAgain.auth.accessToken);
  tab = await connectReady(app.url, attacker.auth.accessToken);
  ids.victimSessions.push(victimTab.ready.sessionId, victimSecondTab.ready.sessionId);

  const active = await victimTab.call('task:create', { title: 'victim active', deadline: '2031-05-01', project: ids.victimProject });
  const recurring = await victimTab.call('task:create', {
    title: 'victim recurring',
    deadline: '2031-01-31',
    recurrence: { type: 'monthly', interval: 1 },
    dependencies: [active.task.id],
  });
  const done = await victimTab.call('task:create', { title: 'victim done', status: 'in_progress' });
  await victimTab.call('task:complete', { id: done.task.id, notes: 'finished' });
  const trashed = await victimTab.call('task:create', { title: 'victim trashed', status: 'waiting_on', waitingOn: 'Bob' });
  await victimTab.call('task:delete', { id: trashed.task.id });
  // A reminder set in the past fires at once (REM-7): the victim has a due one.
  const reminded = await victimTab.call('task:create', { title: 'victim reminded', remindAt: new Date(Date.now() - 60_000).toISOString() });
  const due = await victimTab.waitFor('reminder:due', (d) => d.reminder.taskId === reminded.task.id, 10_000);
  ids.victimReminders.push(due.reminder.id);
  ids.victimTasks.push(active.task.id, recurring.task.id, done.task.id, trashed.task.id, reminded.task.id);

  const chat = await victimTab.call('chat:send', { content: 'victim says hello' });
  await victimTab.waitFor('chat:done', (d) => d.conversationId === chat.conversationId, 20_000);
  ids.victimConversation = chat.conversationId;
  ids.victimMessages.push(chat.userMessage.id, chat.assistantMessageId);

  for (const title of ['own one', 'own two']) ids.ownTasks.push((await tab.call('task:create', { title })).task.id);
  const ownTrashed = (await tab.call('task:create', { title: 'own trashed' })).task.id;
  await tab.call('task:delete', { id: ownTrashed });
  ids.ownTasks.push(ownTrashed);

  victimBefore = await victimState();
  victimTab.received.length = 0;
  victimSecondTab.received.length = 0;
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  for (const t of [tab, victimTab, victimSecondTab]) t?.close();
  await app?.close();
});

// ---------------------------------------------------------------- generators

const NUL = '\u0000';
const oversizeLengths = [
  limits.timezoneMax + 1,
  limits.fullNameMax + 1,
  limits.taskTitleMax + 1,
  1025, // password
  2001, // completion notes
  4097, // auth:refresh token
  limits.taskDescriptionMax + 1,
  limits.chatContentMax + 1,
];
const beyondSafe = [2 ** 53, 2 ** 53 + 2, -(2 ** 53) - 2, 2 ** 64, 1e21, Number.MAX_VALUE];

const str = fc.string({ unit: 'binary', maxLength: 24 });
const withNul = fc.tuple(str, str).map(([a, b]) => `${a}${NUL}${b}`);
const oversize = fc.constantFrom(...oversizeLengths).chain((n) => fc.constantFrom('x', 'é', '💥').map((c) => c.repeat(n)));
const uuid = fc.uuid({ version: 4 });
/** A calendar date anywhere in the 4-digit years, the edges included. */
const date = fc
  .oneof(
    fc.date({ min: new Date('0000-01-01T00:00:00Z'), max: new Date('9999-12-31T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10)),
    fc.constantFrom('0000-01-01', '0001-01-01', '9999-12-31', '2028-02-29', '2031-01-31'),
  );

/** Anything a wrong client might put where a value belongs (never `undefined`: JSON would drop the key). */
const garbage: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(null, true, false, 0, -1, 0.5, -0, NaN, Infinity, -Infinity, '', [], {}, ' ', 'null', '{}'),
  fc.constantFrom(...beyondSafe),
  str,
  withNul,
  oversize,
  fc.integer(),
  fc.double(),
  fc.array(uuid, { minLength: limits.taskDependenciesMax + 1, maxLength: limits.taskDependenciesMax + 60 }),
  fc.array(fc.anything({ maxDepth: 1, maxKeys: 3 }), { maxLength: 5 }),
  fc.anything({ maxDepth: 2, maxKeys: 4 }),
).filter((v) => v !== undefined);

const optional = <T extends Record<string, fc.Arbitrary<unknown>>>(model: T) => fc.record(model, { requiredKeys: [] });
const recurrence = fc.option(
  optional({ type: fc.constantFrom(...recurrenceTypes), interval: fc.integer({ min: 1, max: 1000 }), endDate: fc.option(date, { nil: null }) }).map((r) => ({
    type: 'monthly',
    interval: 1,
    ...r,
  })),
  { nil: null },
);
const taskFields = {
  title: str,
  description: str,
  deadline: fc.option(date, { nil: null }),
  intensity: fc.integer({ min: 0, max: 6 }),
  status: fc.constantFrom(...openTaskStatuses),
  project: fc.option(str, { nil: null }),
  waitingOn: fc.option(str, { nil: null }),
  dependencies: fc.array(uuid, { maxLength: 3 }),
  recurrence,
};
const anyTaskId = () => fc.oneof(uuid, fc.constantFrom(...ids.ownTasks));
/** an `expectedVersion` (CHAT-15), on and over its edges */
const version = fc.oneof(fc.integer({ min: -1, max: 5 }), fc.constantFrom(Number.MAX_SAFE_INTEGER, 2 ** 53, 1.5));

const wrongPassword = () => fc.oneof(str, fc.constant(`${attacker.password}x`), fc.constant(attacker.password.toUpperCase()));
/** TOTP-shaped, recovery-code-shaped and broken codes (AUTH-13) */
const mfaCode = fc.oneof(str, fc.stringMatching(/^\d{6}$/), fc.constantFrom('123 456', '12345', 'abcde-fghij', '0000000', ''));

/** Valid-shaped payloads of every event (mostly schema-valid; a few values sit on the edges on purpose). */
const shapes: Record<RequestEvent, () => fc.Arbitrary<Record<string, unknown>>> = {
  'task:create': () => optional({ id: anyTaskId(), ...taskFields }).map((t) => ({ title: 'a task', ...t })),
  'task:update': () => fc.record({ id: anyTaskId(), expectedVersion: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }), patch: optional(taskFields) }),
  'task:complete': () => optional({ id: anyTaskId(), notes: str, expectedVersion: version }).map((p) => ({ id: randomUUID(), ...p })),
  'task:delete': () => optional({ id: anyTaskId(), expectedVersion: version }).map((p) => ({ id: randomUUID(), ...p })),
  'task:restore': () => optional({ id: anyTaskId(), expectedVersion: version }).map((p) => ({ id: randomUUID(), ...p })),
  'task:purge': () => optional({ id: anyTaskId(), expectedVersion: version }).map((p) => ({ id: randomUUID(), ...p })),
  'task:list': () => optional({ view: fc.constantFrom(...taskViews), days: fc.integer({ min: 0, max: 400 }), project: str }),
  'task:next': () => optional({ intensity: fc.constantFrom(...intensityClasses) }),
  'task:sync': () => fc.record({ since: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)) }),
  'reminder:list': () => fc.constant({}),
  'reminder:snooze': () => fc.record({ id: uuid, until: fc.integer({ min: -60, max: 50_000 }).map((m) => new Date(Date.now() + m * 60_000).toISOString()) }),
  'reminder:dismiss': () => fc.record({ id: uuid }),
  'push:key': () => fc.constant({}),
  'push:subscribe': () =>
    fc.record({
      endpoint: fc.oneof(str, fc.constantFrom('https://push.example.test/abc', 'http://127.0.0.1:1/internal', 'javascript:alert(1)')),
      keys: optional({ p256dh: str, auth: str }),
    }),
  'push:unsubscribe': () => fc.record({ endpoint: str }),
  'chat:send': () => optional({ conversationId: uuid, id: uuid, content: str }).map((p) => ({ content: 'hello', ...p })),
  'chat:cancel': () => fc.record({ messageId: uuid }),
  'chat:history': () => optional({ conversationId: uuid, before: uuid, limit: fc.integer({ min: 0, max: 101 }) }).map((p) => ({ conversationId: randomUUID(), ...p })),
  'chat:edit': () => optional({ messageId: uuid, content: str }).map((p) => ({ messageId: randomUUID(), content: 'edited', ...p })),
  'chat:regenerate': () => fc.record({ messageId: uuid }),
  'chat:continue': () => fc.record({ messageId: uuid }),
  'conversation:list': () => optional({ before: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), limit: fc.integer({ min: 0, max: 101 }) }),
  'conversation:rename': () => fc.record({ id: uuid, title: str }),
  'conversation:delete': () => fc.record({ id: uuid }),
  // Text a tsquery parser would choke on, among random strings: any valid query answers results (CHAT-11).
  search: () =>
    optional({
      query: fc.oneof(str, fc.constantFrom('"unclosed', 'a & | ! ( ) :* <->', "'", '\\', 'own', '-own', 'own or -one', '((((', 'ünïcødé 東京 🎉')),
      kinds: fc.subarray([...searchKinds], { minLength: 1 }),
      limit: fc.integer({ min: 0, max: 51 }),
    }).map((p) => ({ query: 'own', ...p })),
  'auth:refresh': () =>
    fc.record({
      token: fc.oneof(
        str,
        fc.constant(attacker.client.cookie ?? 'cookie'),
        // alg "none" with the attacker's own claims
        fc.constant(
          `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(
            JSON.stringify({ sub: attacker.auth.user.id, sid: tab.ready.sessionId, typ: 'access', role: 'admin', exp: 4_000_000_000 }),
          ).toString('base64url')}.`,
        ),
      ),
    }),
  'user:me': () => fc.constant({}),
  'user:update': () => optional({ fullName: str, timezone: fc.constantFrom('UTC', 'Asia/Tokyo', 'Mars/Olympus', 'utc', 'Etc/GMT+14', '') }),
  'user:export': () => fc.constant({}),
  // Never the right password: this must never succeed.
  'user:delete': () => fc.record({ password: fc.oneof(str, fc.constant(`${attacker.password}x`), fc.constant(attacker.password.toUpperCase())) }),
  'session:list': () => fc.constant({}),
  // Random ids only: the attacker's own session ids would log it out.
  'session:revoke': () => fc.record({ id: uuid }),
  // Never the right current password: the attacker's password must not change, nor its two-factor state.
  'user:password': () => fc.record({ currentPassword: wrongPassword(), newPassword: fc.oneof(str, fc.constant('Another-strong-Passw0rd!')) }),
  'mfa:setup': () => fc.constant({}),
  'mfa:enable': () => fc.record({ password: wrongPassword(), code: mfaCode }),
  'mfa:disable': () => fc.record({ password: wrongPassword(), code: mfaCode }),
  'mfa:recovery-codes': () => fc.record({ password: wrongPassword(), code: mfaCode }),
  'security:log': () => optional({ before: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), limit: fc.integer({ min: 0, max: 101 }) }),
};

/** Events that check the password (argon2, slow): fewer runs, and never a success. */
const passwordChecked = new Set<RequestEvent>(['user:delete', 'user:password', 'mfa:enable', 'mfa:disable', 'mfa:recovery-codes']);

type Expect = (ack: Ack) => void;
type Ack = { ok: true; data: any } | { ok: false; error: z.infer<typeof wireErrorSchema> };
const refused = (code: ErrorCode): Expect => (ack) => expect(ack).toMatchObject({ ok: false, error: { code } });
const refusedOneOf = (...codes: ErrorCode[]): Expect => (ack) => {
  expect(ack.ok).toBe(false);
  expect(codes).toContain(ack.ok ? undefined : ack.error.code);
};
const noVictimIn = (ack: Ack) => {
  expect(ack.ok).toBe(true);
  const text = JSON.stringify(ack).toLowerCase();
  for (const secret of [...ids.victimTasks, ...ids.victimSessions, ids.victimConversation, ...ids.victimMessages, ...ids.victimReminders, victim.auth.user.id]) {
    expect(text).not.toContain(secret.toLowerCase());
  }
};

const victimById = () =>
  fc.tuple(fc.constantFrom(...ids.victimTasks), fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined })).map(([id, expectedVersion]) => ({
    payload: expectedVersion === undefined ? { id } : { id, expectedVersion },
    expect: refused(ErrorCode.NOT_FOUND),
  }));

/** Valid-shaped payloads naming the victim's task ids, session ids, token and password, with what must come back. */
const victimTargets: Partial<Record<RequestEvent, () => fc.Arbitrary<{ payload: unknown; expect: Expect }>>> = {
  'task:create': () =>
    fc.oneof(
      fc.tuple(fc.constantFrom(...ids.victimTasks), fc.boolean()).map(([id, upper]) => ({ payload: { id: upper ? id.toUpperCase() : id, title: 'mine now' }, expect: refused(ErrorCode.CONFLICT) })),
      fc.constantFrom(...ids.victimTasks).map((id) => ({ payload: { title: 'depends on theirs', dependencies: [id] }, expect: refused(ErrorCode.VALIDATION) })),
    ),
  'task:update': () =>
    fc.oneof(
      fc.tuple(fc.constantFrom(...ids.victimTasks), optional(taskFields)).map(([id, patch]) => ({ payload: { id, patch }, expect: refused(ErrorCode.NOT_FOUND) })),
      fc.tuple(fc.constantFrom(...ids.victimTasks), fc.integer({ min: 1, max: 5 })).map(([id, v]) => ({ payload: { id, expectedVersion: v, patch: { title: 'x' } }, expect: refused(ErrorCode.NOT_FOUND) })),
      fc.tuple(fc.constantFrom(...ids.ownTasks.slice(0, 2)), fc.constantFrom(...ids.victimTasks)).map(([own, theirs]) => ({
        payload: { id: own, patch: { dependencies: [theirs] } },
        expect: refused(ErrorCode.VALIDATION),
      })),
    ),
  'task:complete': () =>
    fc.tuple(fc.constantFrom(...ids.victimTasks), fc.option(str, { nil: undefined }), fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined })).map(([id, notes, expectedVersion]) => ({
      payload: { id, ...(notes !== undefined && { notes }), ...(expectedVersion !== undefined && { expectedVersion }) },
      expect: refused(ErrorCode.NOT_FOUND),
    })),
  // With the victim's task's version or not (CHAT-15): another user's task is NOT_FOUND, never a CONFLICT that shows it.
  'task:delete': () => victimById(),
  'task:restore': () => victimById(),
  'task:purge': () => victimById(),
  'task:list': () =>
    fc.tuple(fc.constantFrom(...taskViews), fc.option(fc.integer({ min: 1, max: 365 }), { nil: undefined })).map(([view, days]) => ({
      payload: days === undefined ? { view, project: ids.victimProject } : { view, days, project: ids.victimProject },
      expect: (ack: Ack) => {
        noVictimIn(ack);
        expect(ack.ok && ack.data.tasks).toEqual([]);
      },
    })),
  'task:next': () => shapes['task:next']().map((payload) => ({ payload, expect: noVictimIn })),
  'task:sync': () => fc.nat({ max: 20 }).map((since) => ({ payload: { since }, expect: noVictimIn })),
  'reminder:list': () => fc.constant({ payload: {}, expect: noVictimIn }),
  'reminder:snooze': () =>
    fc.tuple(fc.constantFrom(...ids.victimReminders), fc.boolean()).map(([id, upper]) => ({
      payload: { id: upper ? id.toUpperCase() : id, until: new Date(Date.now() + 3_600_000).toISOString() },
      expect: refused(ErrorCode.NOT_FOUND),
    })),
  'reminder:dismiss': () => fc.constantFrom(...ids.victimReminders).map((id) => ({ payload: { id }, expect: refused(ErrorCode.NOT_FOUND) })),
  'auth:refresh': () => fc.constant({ payload: { token: victim.auth.accessToken }, expect: refused(ErrorCode.FORBIDDEN) }),
  'user:me': () => fc.constant({ payload: {}, expect: noVictimIn }),
  'user:export': () => fc.constant({ payload: {}, expect: noVictimIn }),
  'user:delete': () => fc.constant({ payload: { password: victim.password }, expect: refused(ErrorCode.INVALID_CREDENTIALS) }),
  'session:list': () => fc.constant({ payload: {}, expect: noVictimIn }),
  'session:revoke': () => fc.constantFrom(...ids.victimSessions).map((id) => ({ payload: { id }, expect: refused(ErrorCode.NOT_FOUND) })),
  // The victim's password is no key to the attacker's own account (AUTH-14, AUTH-15).
  'user:password': () => fc.constant({ payload: { currentPassword: victim.password, newPassword: strongPassword() }, expect: refused(ErrorCode.INVALID_CREDENTIALS) }),
  'mfa:disable': () => fc.constant({ payload: { password: victim.password, code: '123456' }, expect: refusedOneOf(ErrorCode.INVALID_CREDENTIALS, ErrorCode.CONFLICT) }),
  'mfa:recovery-codes': () => fc.constant({ payload: { password: victim.password, code: '123456' }, expect: refusedOneOf(ErrorCode.INVALID_CREDENTIALS, ErrorCode.CONFLICT) }),
  'security:log': () => fc.constant({ payload: {}, expect: noVictimIn }),
  'chat:send': () =>
    fc.oneof(
      fc.constant({ payload: { conversationId: ids.victimConversation, content: 'into their conversation' }, expect: refused(ErrorCode.NOT_FOUND) }),
      fc.constantFrom(...ids.victimMessages).map((id) => ({ payload: { id, content: 'reusing their message id' }, expect: refused(ErrorCode.CONFLICT) })),
    ),
  'chat:cancel': () => fc.constantFrom(...ids.victimMessages).map((messageId) => ({ payload: { messageId }, expect: refused(ErrorCode.NOT_FOUND) })),
  'chat:history': () =>
    fc.option(fc.constantFrom(...ids.victimMessages), { nil: undefined }).map((before) => ({
      payload: before === undefined ? { conversationId: ids.victimConversation } : { conversationId: ids.victimConversation, before },
      expect: refused(ErrorCode.NOT_FOUND),
    })),
  'chat:edit': () => fc.constantFrom(...ids.victimMessages).map((messageId) => ({ payload: { messageId, content: 'rewritten by someone else' }, expect: refused(ErrorCode.NOT_FOUND) })),
  'chat:regenerate': () => fc.constantFrom(...ids.victimMessages).map((messageId) => ({ payload: { messageId }, expect: refused(ErrorCode.NOT_FOUND) })),
  'chat:continue': () => fc.constantFrom(...ids.victimMessages).map((messageId) => ({ payload: { messageId }, expect: refused(ErrorCode.NOT_FOUND) })),
  'conversation:list': () => fc.constant({ payload: {}, expect: noVictimIn }),
  'conversation:rename': () => fc.constant({ payload: { id: ids.victimConversation, title: 'renamed by someone else' }, expect: refused(ErrorCode.NOT_FOUND) }),
  'conversation:delete': () => fc.constant({ payload: { id: ids.victimConversation }, expect: refused(ErrorCode.NOT_FOUND) }),
  // The victim's words find nothing of theirs (CHAT-11); the attacker has no such words.
  search: () =>
    fc.constantFrom('victim', 'victim active', 'victim says hello', '"victim trashed"', 'victim or nothing', 'vic').map((query) => ({
      payload: { query },
      expect: (ack: Ack) => {
        noVictimIn(ack);
        expect(ack.ok && ack.data.results).toEqual([]);
      },
    })),
};

/** Every path to a value inside a JSON-like value (objects and arrays), root excluded. */
function valuePaths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== 'object') return [];
  const entries: [string | number, unknown][] = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  return entries.flatMap(([k, v]) => [[...prefix, k], ...valuePaths(v, [...prefix, k])]);
}
/** Every path to a plain object, root included. */
function objectPaths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  return [prefix, ...Object.entries(value).flatMap(([k, v]) => objectPaths(v, [...prefix, k]))];
}
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
function at(root: unknown, path: (string | number)[]): any {
  return path.reduce<any>((node, key) => node[key], root);
}
/** Defines an own, enumerable property: `__proto__` included, as JSON.parse would. */
function setOwn(target: any, key: string | number, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

type Case =
  | { kind: 'not-an-object'; payload: unknown }
  | { kind: 'garbage-object'; payload: unknown }
  | { kind: 'mutated'; payload: unknown }
  | { kind: 'extra-key'; payload: unknown }
  | { kind: 'pollution'; payload: unknown }
  | { kind: 'valid-shaped'; payload: unknown }
  | { kind: 'other-user'; payload: unknown; expect: Expect };

function cases(event: RequestEvent): fc.Arbitrary<Case> {
  const shape = shapes[event]();
  const notAnObject = fc.oneof(garbage.filter((g) => g === null || typeof g !== 'object' || Array.isArray(g)), fc.array(shape, { minLength: 1, maxLength: 2 }));
  const garbageObject = fc.dictionary(fc.oneof(str, fc.constantFrom(...Object.keys(fc.sample(shape, 1)[0] ?? {}), 'id', 'title', 'patch')), garbage, { maxKeys: 4 });
  const mutated = shape.chain((base) => {
    const paths = valuePaths(base);
    if (paths.length === 0) return fc.constant(base);
    return fc.tuple(fc.constantFrom(...paths), garbage).map(([path, value]) => {
      const copy = clone(base);
      setOwn(at(copy, path.slice(0, -1)), path[path.length - 1]!, value);
      return copy;
    });
  });
  const extraKey = shape.chain((base) =>
    fc.tuple(fc.constantFrom(...objectPaths(base)), fc.oneof(str.map((s) => `x_${s}`), fc.constantFrom('', ' id', 'ID', 'Title', NUL, 'toString', 'hasOwnProperty')), garbage).map(([path, key, value]) => {
      const copy = clone(base);
      setOwn(at(copy, path), key, value);
      return copy;
    }),
  );
  const pollution = shape.chain((base) =>
    fc
      .tuple(
        fc.constantFrom(...objectPaths(base)),
        fc.constantFrom(
          ['__proto__', { polluted: 1 }],
          ['__proto__', JSON.parse('{"__proto__":{"polluted":1}}')],
          ['constructor', { prototype: { polluted: 1 } }],
          ['prototype', { polluted: 1 }],
          ['__proto__', null],
          ['__proto__', 'polluted'],
        ),
      )
      .map(([path, [key, value]]) => {
        const copy = clone(base);
        setOwn(at(copy, path), key as string, value);
        return copy;
      }),
  );
  const arbs: fc.Arbitrary<Case>[] = [
    notAnObject.map((payload) => ({ kind: 'not-an-object' as const, payload })),
    garbageObject.map((payload) => ({ kind: 'garbage-object' as const, payload })),
    mutated.map((payload) => ({ kind: 'mutated' as const, payload })),
    extraKey.map((payload) => ({ kind: 'extra-key' as const, payload })),
    pollution.map((payload) => ({ kind: 'pollution' as const, payload })),
    shape.map((payload) => ({ kind: 'valid-shaped' as const, payload })),
  ];
  const target = victimTargets[event];
  if (target) arbs.push(target().map(({ payload, expect }) => ({ kind: 'other-user' as const, payload, expect })));
  return fc.oneof(...arbs);
}

const ackSchema = z.union([z.strictObject({ ok: z.literal(true), data: z.unknown() }), z.strictObject({ ok: z.literal(false), error: wireErrorSchema.strict() })]);

/** What the server sees: the payload after the JSON round trip of the wire. */
const overTheWire = (payload: unknown): unknown => (payload === undefined ? null : JSON.parse(JSON.stringify(payload)));

async function send(event: RequestEvent, payload: unknown): Promise<Ack> {
  return (tab.socket.timeout(ACK_TIMEOUT_MS) as any).emitWithAck(event, payload);
}

function checkAck(event: RequestEvent, c: Case, ack: Ack): void {
  expect(ackSchema.safeParse(ack).success, JSON.stringify(ack)).toBe(true);
  const text = JSON.stringify(ack);
  expect(text).not.toMatch(/\n\s+at |\$argon2|passwordHash/);
  const wire = overTheWire(c.payload);
  const sent = JSON.stringify(wire)?.toLowerCase() ?? '';
  // Nothing of the victim comes back unless the attacker sent it in the first place.
  for (const secret of [...ids.victimTasks, ...ids.victimSessions, ids.victimConversation, ...ids.victimMessages, ...ids.victimReminders, victim.auth.user.id, victim.email, victim.auth.accessToken]) {
    if (!sent.includes(secret.toLowerCase())) expect(text.toLowerCase()).not.toContain(secret.toLowerCase());
  }
  if (!ack.ok) expect(ack.error.code).not.toBe(ErrorCode.INTERNAL);
  const isObject = wire !== null && typeof wire === 'object' && !Array.isArray(wire);
  const schemaOk = isObject && requestSchemas[event].safeParse(wire).success;
  switch (c.kind) {
    case 'not-an-object':
      expect(ack).toMatchObject({ ok: false, error: { code: ErrorCode.VALIDATION, issues: [{ path: '' }] } });
      return;
    case 'extra-key':
    case 'pollution':
      expect(schemaOk).toBe(false);
      expect(ack).toMatchObject({ ok: false, error: { code: ErrorCode.VALIDATION } });
      break;
    case 'other-user':
      // Naming another user's ids never bypasses validation; a valid payload gets the rule's answer.
      if (schemaOk) c.expect(ack);
      else expect(ack).toMatchObject({ ok: false, error: { code: ErrorCode.VALIDATION } });
      break;
    default:
      if (!schemaOk) expect(ack).toMatchObject({ ok: false, error: { code: ErrorCode.VALIDATION } });
  }
  if (!ack.ok && ack.error.code === ErrorCode.VALIDATION && !schemaOk) {
    expect(ack.error.issues?.length).toBeGreaterThan(0);
  }
  if (passwordChecked.has(event)) expect(ack.ok).toBe(false);
  // Whatever its text, a valid query is answered, never an error of PostgreSQL's parser (CHAT-11).
  if (event === 'search' && schemaOk) expect(ack.ok, JSON.stringify(ack)).toBe(true);
}

/** The server is alive, clean and the victim untouched. */
async function assertHealthy(logsFrom: number): Promise<void> {
  expect(tab.socket.connected).toBe(true);
  const list = await tab.request('task:list', {}, ACK_TIMEOUT_MS);
  expect(list.ok).toBe(true);
  expect(await victimState()).toEqual(victimBefore);
  const heard = [...victimTab.received, ...victimSecondTab.received].filter((r) => r.event !== 'session:ready');
  expect(heard).toEqual([]);
  expect(victimTab.socket.connected && victimSecondTab.socket.connected).toBe(true);
  const errors = app.logs.records().slice(logsFrom).filter((r) => r.level === 'error' || r.level === 'fatal' || /unhandled/i.test(String(r.msg)));
  expect(errors).toEqual([]);
  expect(unhandled).toEqual([]);
  expect(({} as any).polluted).toBeUndefined();
  expect((Object.prototype as any).polluted).toBeUndefined();
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeKeysBefore);
}

describe('RT-3 / §1 every event refuses bad input and touches only its own user', () => {
  it('[RT-3] the generators really send an own __proto__ key and an unsafe integer over the wire', () => {
    const polluted = fc.sample(cases('task:sync').filter((c) => c.kind === 'pollution'), 20).map((c) => JSON.stringify(c.payload));
    expect(polluted.some((s) => s.includes('"__proto__"'))).toBe(true);
    expect(JSON.stringify(overTheWire({ since: 2 ** 53 + 2 }))).toBe('{"since":9007199254740994}');
    expect(({} as any).polluted).toBeUndefined();
  });

  for (const event of events) {
    it(`[RT-3][TASK-6] ${event}: malformed, oversize, extra-key, __proto__, U+0000, >2^53 and other-user payloads get a wire error, never a crash`, async () => {
      const runs = passwordChecked.has(event) ? 25 : RUNS;
      const logsFrom = app.logs.records().length;
      await fc.assert(
        fc.asyncProperty(cases(event), async (c) => {
          const ack = await send(event, c.payload);
          checkAck(event, c, ack);
          expect(tab.socket.connected).toBe(true);
        }),
        { numRuns: runs, endOnFailure: true },
      );
      await assertHealthy(logsFrom);
    }, 60_000);
  }

  it('[RT-3] an event with an ack but no payload, or with extra arguments, answers VALIDATION', async () => {
    const logsFrom = app.logs.records().length;
    for (const event of events) {
      const none = await (tab.socket.timeout(ACK_TIMEOUT_MS) as any).emitWithAck(event);
      expect(none, event).toMatchObject({ ok: false, error: { code: ErrorCode.VALIDATION } });
      const extra = await (tab.socket.timeout(ACK_TIMEOUT_MS) as any).emitWithAck(event, {}, { more: 1 });
      expect(extra, event).toMatchObject({ ok: false, error: { code: ErrorCode.VALIDATION } });
    }
    await assertHealthy(logsFrom);
  });
});
