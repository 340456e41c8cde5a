/**
 * The account and its sessions (PROTOCOL §6.3) through real sockets, on two
 * production-mode nodes sharing PostgreSQL and Redis.
 */
import { describe, expect, it } from 'vitest';
import { productionEnv } from './support/env.js';
import { useTwoNodes } from './support/app.js';
import { signUp, type SignedUp } from './support/users.js';
import { RestClient } from './support/http.js';
import { closed, connectError, connectReady } from './support/sockets.js';
import { ErrorCode } from '../shared/errors.js';
import type { AuthResult } from '../shared/schemas/auth.js';
import { hashRefreshToken } from '../server/features/auth/tokens.js';

const cluster = useTwoNodes(() => productionEnv({ RATE_LIMIT_PER_MINUTE: '10000', SOCKET_EVENTS_PER_MINUTE: '10000' }));
const { track } = cluster;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A second login of the same user, with its own user agent: a second session. */
async function loginAs(user: SignedUp, userAgent: string, url = cluster.a.url): Promise<{ client: RestClient; auth: AuthResult }> {
  const client = new RestClient(url);
  const res = await client.post<AuthResult>('/api/v1/auth/login', { email: user.email, password: user.password }, { headers: { 'user-agent': userAgent } });
  expect(res.status).toBe(200);
  return { client, auth: res.body };
}

async function count(table: 'users' | 'sessions' | 'tasks' | 'refresh_tokens' | 'task_tombstones', userId: string): Promise<number> {
  const conn = cluster.a.deps.orm.em.getConnection();
  const rows =
    table === 'users'
      ? await conn.execute<{ n: string }[]>('select count(*) as n from users where id = ?', [userId])
      : table === 'refresh_tokens'
        ? await conn.execute<{ n: string }[]>('select count(*) as n from refresh_tokens r join sessions s on s.id = r.session_id where s.user_id = ?', [userId])
        : await conn.execute<{ n: string }[]>(`select count(*) as n from ${table} where user_id = ?`, [userId]);
  return Number(rows[0]!.n);
}

describe('§6.3 profile', () => {
  it('[§6.3] user:me answers the user as signed up', async () => {
    const user = await signUp(cluster.a.url, { fullName: 'Ada Lovelace', timezone: 'Europe/London' });
    const tab = track(await connectReady(cluster.b.url, user.auth.accessToken));
    const me = await tab.call('user:me', {});
    expect(me.user).toEqual(user.auth.user);
    expect(me.user).toMatchObject({ fullName: 'Ada Lovelace', timezone: 'Europe/London', role: 'user', email: user.email });
  });

  it('[§6.3][RT-7] user:update changes fullName and timezone and broadcasts user:changed to every tab of the user on both nodes, and to no one else', async () => {
    const user = await signUp(cluster.a.url, { fullName: 'Before' });
    const other = await signUp(cluster.a.url);
    const tabA = track(await connectReady(cluster.a.url, user.auth.accessToken));
    const tabB = track(await connectReady(cluster.b.url, user.auth.accessToken));
    const bystander = track(await connectReady(cluster.b.url, other.auth.accessToken));
    const { user: updated } = await tabA.call('user:update', { fullName: '  Grace Hopper ', timezone: 'America/New_York' });
    expect(updated).toEqual({ ...user.auth.user, fullName: 'Grace Hopper', timezone: 'America/New_York' });
    expect(await tabB.waitFor('user:changed')).toEqual({ user: updated });
    expect(await tabA.waitFor('user:changed')).toEqual({ user: updated });
    expect((await tabB.call('user:me', {})).user).toEqual(updated);
    await sleep(200);
    expect(bystander.received.filter((r) => r.event === 'user:changed')).toEqual([]);
    expect((await bystander.call('user:me', {})).user).toEqual(other.auth.user);
  });

  it('[§6.3][RT-3] user:update with an unknown IANA name or an oversize name is VALIDATION on that field and changes nothing', async () => {
    const user = await signUp(cluster.a.url, { timezone: 'Asia/Tokyo' });
    const tab = track(await connectReady(cluster.a.url, user.auth.accessToken));
    const twin = track(await connectReady(cluster.b.url, user.auth.accessToken));
    const badZone = await tab.request('user:update', { timezone: 'Mars/Olympus_Mons' });
    expect(badZone).toMatchObject({ ok: false, error: { code: ErrorCode.VALIDATION } });
    if (!badZone.ok) expect(badZone.error.issues?.map((i) => i.path)).toEqual(['timezone']);
    const longName = await tab.request('user:update', { fullName: 'x'.repeat(201), timezone: 'UTC' });
    expect(longName).toMatchObject({ ok: false, error: { code: ErrorCode.VALIDATION } });
    if (!longName.ok) expect(longName.error.issues?.map((i) => i.path)).toEqual(['fullName']);
    expect((await tab.call('user:me', {})).user).toEqual(user.auth.user);
    await sleep(200);
    expect(twin.received.filter((r) => r.event === 'user:changed')).toEqual([]);
  });
});

describe('§6.3 export', () => {
  it('[§6.3][GEN-1] user:export holds everything of the user, no secret, and nothing of another user', async () => {
    const user = await signUp(cluster.a.url, { fullName: 'Exporter' });
    const second = await loginAs(user, 'SamTest/Export');
    const other = await signUp(cluster.a.url, { fullName: 'Someone Else' });
    const tab = track(await connectReady(cluster.a.url, user.auth.accessToken));
    const otherTab = track(await connectReady(cluster.b.url, other.auth.accessToken));
    const kept = await tab.call('task:create', { title: 'kept', deadline: '2030-03-01', project: 'Export' });
    const trashed = await tab.call('task:create', { title: 'trashed' });
    await tab.call('task:delete', { id: trashed.task.id });
    const done = await tab.call('task:create', { title: 'done' });
    await tab.call('task:complete', { id: done.task.id, notes: 'ok' });
    const foreign = await otherTab.call('task:create', { title: 'not yours', project: 'Export' });

    const data = await tab.call('user:export', {});
    expect(Object.keys(data).sort()).toEqual(['conversations', 'messages', 'sessions', 'tasks', 'user']);
    expect(data.user).toEqual(user.auth.user);
    const truth = (await tab.call('task:sync', { since: 0 })).tasks;
    expect(new Set(data.tasks.map((t) => JSON.stringify(t)))).toEqual(new Set(truth.map((t) => JSON.stringify(t))));
    expect(data.tasks.map((t) => t.id).sort()).toEqual([kept.task.id, trashed.task.id, done.task.id].sort());
    expect(data.tasks.find((t) => t.id === trashed.task.id)?.status).toBe('deleted');
    expect(data.conversations).toEqual([]);
    expect(data.messages).toEqual([]);
    expect(data.sessions.map((s) => s.id).sort()).toEqual([tab.ready.sessionId, (await connectReady(cluster.a.url, second.auth.accessToken).then(track)).ready.sessionId].sort());
    expect(data.sessions.find((s) => s.userAgent === 'SamTest/Export')).toMatchObject({ revokedAt: null });
    for (const s of data.sessions) expect(Object.keys(s).sort()).toEqual(['createdAt', 'id', 'ip', 'lastUsedAt', 'revokedAt', 'userAgent']);

    const text = JSON.stringify(data);
    expect(text).not.toMatch(/passwordHash|password_hash|\$argon2|"password"|tokenHash|token_hash/i);
    for (const secret of [user.password, user.auth.accessToken, second.auth.accessToken, user.client.cookie!, second.client.cookie!]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(hashRefreshToken(secret));
    }
    for (const theirs of [other.auth.user.id, other.email, foreign.task.id, otherTab.ready.sessionId, 'not yours', 'Someone Else']) {
      expect(text).not.toContain(theirs);
    }
  });
});

describe('§6.3 sessions', () => {
  it('[§6.3] session:list shows both logins with current set for the asking one and the user agent recorded', async () => {
    const user = await signUp(cluster.a.url);
    const second = await loginAs(user, 'SamTest/Phone 1.0');
    const first = track(await connectReady(cluster.a.url, user.auth.accessToken));
    const phone = track(await connectReady(cluster.b.url, second.auth.accessToken));
    const seen = await first.call('session:list', {});
    expect(seen.sessions).toHaveLength(2);
    expect(seen.sessions.find((s) => s.current)?.id).toBe(first.ready.sessionId);
    expect(seen.sessions.filter((s) => s.current)).toHaveLength(1);
    const phoneSession = seen.sessions.find((s) => s.id === phone.ready.sessionId);
    expect(phoneSession).toMatchObject({ userAgent: 'SamTest/Phone 1.0', current: false });
    for (const s of seen.sessions) {
      expect(Object.keys(s).sort()).toEqual(['createdAt', 'current', 'id', 'lastUsedAt', 'userAgent']);
      expect(Number.isNaN(Date.parse(s.createdAt))).toBe(false);
    }
    const fromPhone = await phone.call('session:list', {});
    expect(fromPhone.sessions.find((s) => s.current)?.id).toBe(phone.ready.sessionId);
  });

  it('[§6.3][AUTH-7][RT-5] session:revoke of another of my sessions closes its socket on the other node within 2 s; its token and refresh cookie are refused', async () => {
    const user = await signUp(cluster.a.url);
    const second = await loginAs(user, 'SamTest/Laptop');
    const mine = track(await connectReady(cluster.a.url, user.auth.accessToken));
    const victim = track(await connectReady(cluster.b.url, second.auth.accessToken));
    const revokedEvent = victim.waitFor('session:revoked', undefined, 2_000);
    const gone = closed(victim, 2_000);
    const started = Date.now();
    expect(await mine.request('session:revoke', { id: victim.ready.sessionId })).toEqual({ ok: true, data: {} });
    expect(await revokedEvent).toMatchObject({ reason: expect.any(String) });
    await gone;
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await connectError(cluster.a.url, second.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    expect(await connectError(cluster.b.url, second.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    const refresh = await second.client.post('/api/v1/auth/refresh');
    expect(refresh.status).toBe(401);
    // The asking session lives on.
    await sleep(100);
    expect(mine.socket.connected).toBe(true);
    const left = await mine.call('session:list', {});
    expect(left.sessions.map((s) => s.id)).toEqual([mine.ready.sessionId]);
    expect(cluster.a.logs.records().some((r) => r.type === 'session_revoked_by_user' && r.sessionId === victim.ready.sessionId)).toBe(true);
  });

  it('[§6.3][AUTH-7] session:revoke of the current session: the ack { ok: true, data: {} } arrives first, then the socket is closed', async () => {
    const user = await signUp(cluster.a.url);
    const tab = track(await connectReady(cluster.a.url, user.auth.accessToken));
    const sameSessionOtherNode = track(await connectReady(cluster.b.url, user.auth.accessToken));
    const order: string[] = [];
    const gone = closed(tab, 2_000).then(() => order.push('closed'));
    const goneToo = closed(sameSessionOtherNode, 2_000);
    const ack = await tab.request('session:revoke', { id: tab.ready.sessionId });
    order.push('ack');
    expect(ack).toEqual({ ok: true, data: {} });
    await gone;
    await goneToo;
    expect(order).toEqual(['ack', 'closed']);
    expect(await connectError(cluster.b.url, user.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    expect((await user.client.post('/api/v1/auth/refresh')).status).toBe(401);
  });

  it('[§6.3][TASK-6] session:revoke of another user\'s session id is NOT_FOUND and leaves that session alive', async () => {
    const user = await signUp(cluster.a.url);
    const other = await signUp(cluster.a.url);
    const tab = track(await connectReady(cluster.a.url, user.auth.accessToken));
    const otherTab = track(await connectReady(cluster.b.url, other.auth.accessToken));
    expect(await tab.request('session:revoke', { id: otherTab.ready.sessionId })).toMatchObject({ ok: false, error: { code: ErrorCode.NOT_FOUND } });
    await sleep(200);
    expect(otherTab.socket.connected).toBe(true);
    expect(otherTab.received.some((r) => r.event === 'session:revoked')).toBe(false);
    expect((await otherTab.call('session:list', {})).sessions.map((s) => s.id)).toEqual([otherTab.ready.sessionId]);
    expect((await other.client.post('/api/v1/auth/refresh')).status).toBe(200);
  });
});

describe('§6.3 account deletion', () => {
  it('[§6.3] user:delete with a wrong password is INVALID_CREDENTIALS and deletes nothing', async () => {
    const user = await signUp(cluster.a.url);
    const tab = track(await connectReady(cluster.a.url, user.auth.accessToken));
    await tab.call('task:create', { title: 'still here' });
    const ack = await tab.request('user:delete', { password: `${user.password}!` });
    expect(ack).toMatchObject({ ok: false, error: { code: ErrorCode.INVALID_CREDENTIALS } });
    expect(JSON.stringify(ack)).not.toContain(user.password);
    expect(tab.socket.connected).toBe(true);
    expect(await count('users', user.auth.user.id)).toBe(1);
    expect(await count('tasks', user.auth.user.id)).toBe(1);
    expect((await tab.call('user:me', {})).user.id).toBe(user.auth.user.id);
    expect((await user.client.post('/api/v1/auth/refresh')).status).toBe(200);
  });

  it('[§6.3][AUTH-7] user:delete with the right password: ack ok, every socket on both nodes closed, tokens refused, login 401, rows gone, others intact, logged', async () => {
    const user = await signUp(cluster.a.url);
    const second = await loginAs(user, 'SamTest/Second', cluster.b.url);
    const other = await signUp(cluster.b.url);
    const tab = track(await connectReady(cluster.a.url, user.auth.accessToken));
    const tabB = track(await connectReady(cluster.b.url, user.auth.accessToken));
    const secondTab = track(await connectReady(cluster.b.url, second.auth.accessToken));
    const otherTab = track(await connectReady(cluster.a.url, other.auth.accessToken));
    const t1 = await tab.call('task:create', { title: 'to be deleted' });
    await tab.call('task:delete', { id: t1.task.id });
    await tab.call('task:purge', { id: t1.task.id });
    await tab.call('task:create', { title: 'also deleted', deadline: '2030-01-01' });
    const otherTask = await otherTab.call('task:create', { title: 'survives' });
    const otherBefore = { list: await otherTab.call('task:sync', { since: 0 }), me: await otherTab.call('user:me', {}) };
    expect(await count('task_tombstones', user.auth.user.id)).toBe(1);

    const allGone = Promise.all([closed(tab, 2_000), closed(tabB, 2_000), closed(secondTab, 2_000)]);
    const started = Date.now();
    const ack = await tab.request('user:delete', { password: user.password });
    expect(ack).toEqual({ ok: true, data: {} });
    await allGone;
    expect(Date.now() - started).toBeLessThan(2_000);

    expect(await connectError(cluster.a.url, user.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    expect(await connectError(cluster.b.url, second.auth.accessToken)).toBe(ErrorCode.TOKEN_REVOKED);
    const login = await new RestClient(cluster.b.url).post('/api/v1/auth/login', { email: user.email, password: user.password });
    expect(login.status).toBe(401);
    expect(login.body).toMatchObject({ code: ErrorCode.INVALID_CREDENTIALS });
    expect((await user.client.post('/api/v1/auth/refresh')).status).toBe(401);
    for (const table of ['users', 'sessions', 'tasks', 'refresh_tokens', 'task_tombstones'] as const) {
      expect(await count(table, user.auth.user.id), table).toBe(0);
    }

    await sleep(200);
    expect(otherTab.socket.connected).toBe(true);
    expect({ list: await otherTab.call('task:sync', { since: 0 }), me: await otherTab.call('user:me', {}) }).toEqual(otherBefore);
    expect(otherBefore.list.tasks.map((t) => t.id)).toEqual([otherTask.task.id]);
    expect(await count('users', other.auth.user.id)).toBe(1);

    const record = await cluster.a.logs.waitFor((r) => r.event === 'security' && r.type === 'account_deleted' && r.userId === user.auth.user.id, 2_000);
    expect(JSON.stringify(record)).not.toContain(user.password);
  });
});
