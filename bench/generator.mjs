// A load generator process (forked by scripts/bench.mjs, driven over IPC).
// Holds many socket.io-client sockets ("tabs"), 3 per user, each its own
// connection (forceNew), bound to a 127.0.0.x source address so that the
// ephemeral port range is per address. Every latency is measured from the
// *scheduled* time of the action (open loop), so a stalled server cannot hide
// behind a slowed-down generator (coordinated omission).
//
// Commands (msg.cmd): connect, loadStart, loadStop, chat, remindersSet, remindersStatus,
// remindersCollect, status, disconnect, gc.
import { randomUUID } from 'node:crypto';
import { io } from 'socket.io-client';
import { encodeHist, epochMs, newHist, recordMs, sleep } from './lib.mjs';

const genId = Number(process.env.GEN_ID ?? 0);
const localAddresses = (process.env.LOCAL_ADDRESSES ?? '127.0.0.1').split(',');
let addrTurn = 0;

/** userId -> { userId, taskId, set, tabs: Tab[], stream? } */
const users = new Map();
/** every tab: { s, user, tab, set, ready, readyAt } */
const tabs = new Set();

// Reconnection as the real client does (client/src/lib/socket.ts).
const clientOptions = { transports: ['websocket'], forceNew: true, reconnection: true, reconnectionDelay: 500, reconnectionDelayMax: 8_000, randomizationFactor: 0.5, timeout: 10_000 };

let load; // the running task:update load, see loadStart
let rem; // the reminders being counted, see remindersSet

function onTaskChanged(tab, payload) {
  if (!load) return;
  const title = payload?.task?.title;
  if (typeof title !== 'string' || !title.startsWith(load.prefix)) return;
  const k = Number(title.slice(load.prefix.length));
  const rec = load.pending.get(k);
  if (!rec) {
    load.unexpected++;
    return;
  }
  const lat = performance.now() - rec.sched;
  recordMs(load.deliveryHist, lat);
  load.delivered++;
  if (++rec.got >= rec.expected) {
    recordMs(load.lastTabHist, lat);
    if (rec.acked) load.pending.delete(k);
  }
}

function onChatDelta(tab, payload) {
  const st = tab.user.stream;
  if (!st || payload?.messageId !== st.messageId && st.messageId !== undefined) return;
  const arr = st.tabs[tab.tab];
  st.len[tab.tab] += payload.text.length;
  arr.push(epochMs(), st.len[tab.tab]);
  if (payload.seq !== st.seqs[tab.tab]) st.seqErrors++;
  st.seqs[tab.tab] = payload.seq + 1;
}

function makeTab(user, tabIndex, url, token, set) {
  const localAddress = localAddresses[addrTurn++ % localAddresses.length];
  const s = io(url, { ...clientOptions, auth: { token }, localAddress });
  const tab = { s, user, tab: tabIndex, set, ready: false, readyAt: 0, onReady: undefined, onFail: undefined };
  s.on('session:ready', () => {
    tab.ready = true;
    tab.readyAt = epochMs();
    tab.onReady?.();
  });
  s.on('connect_error', (err) => tab.onFail?.(err?.message ?? 'connect_error'));
  s.on('disconnect', (reason) => {
    tab.ready = false;
    if (rem && !tab.closing) rem.disconnects++;
    // The server closed us on purpose (shutdown, restart): come back as the app does, with a jitter.
    if (reason === 'io server disconnect' && !tab.closing) setTimeout(() => !tab.closing && s.connect(), 250 + Math.random() * 500).unref();
  });
  s.on('task:changed', (p) => onTaskChanged(tab, p));
  s.on('reminder:due', (p) => onReminderDue(tab, p));
  s.on('chat:delta', (p) => onChatDelta(tab, p));
  s.on('chat:done', () => {
    const st = user.stream;
    if (st && !st.done[tab.tab]) {
      st.done[tab.tab] = true;
      st.doneCount++;
    }
  });
  tabs.add(tab);
  return tab;
}

/** Opens tabs at a fixed arrival rate; latency = session:ready − scheduled arrival. */
async function connect({ set, list, urls, tabsPerUser, rate, timeoutMs }) {
  const hist = newHist();
  const errors = {};
  let ok = 0;
  let failed = 0;
  const total = list.length * tabsPerUser;
  const start = performance.now();
  let i = 0;
  let resolveAll;
  const all = new Promise((r) => (resolveAll = r));
  const settle = () => ok + failed >= total && resolveAll();
  const arrivals = [];
  for (const [ui, u] of list.entries()) {
    let user = users.get(u.userId);
    if (!user) {
      user = { userId: u.userId, taskId: u.taskId, set, tabs: [] };
      users.set(u.userId, user);
    }
    for (let t = 0; t < tabsPerUser; t++) arrivals.push({ user, t, url: urls[(t + ui) % urls.length], token: u.token });
  }
  const pump = () => {
    const now = performance.now();
    while (i < arrivals.length && start + (i * 1000) / rate <= now) {
      const a = arrivals[i];
      const sched = start + (i * 1000) / rate;
      i++;
      const tab = makeTab(a.user, a.t, a.url, a.token, set);
      a.user.tabs[a.t] = tab;
      let doneOnce = false;
      tab.onReady = () => {
        if (doneOnce) return;
        doneOnce = true;
        recordMs(hist, performance.now() - sched);
        ok++;
        settle();
      };
      tab.onFail = (msg) => {
        if (doneOnce) return;
        // Transport errors are retried by the manager; a refusal by the server is final.
        if (tab.s.active) return;
        doneOnce = true;
        errors[msg] = (errors[msg] ?? 0) + 1;
        failed++;
        settle();
      };
    }
    if (i < arrivals.length) setTimeout(pump, Math.max(0, start + (i * 1000) / rate - performance.now()));
  };
  pump();
  const timedOut = await Promise.race([all.then(() => false), sleep(timeoutMs).then(() => true)]);
  if (timedOut) {
    for (const a of arrivals) {
      const tab = a.user.tabs[a.t];
      if (tab && !tab.ready) {
        tab.onFail = tab.onReady = undefined;
      }
    }
    const notReady = arrivals.filter((a) => !a.user.tabs[a.t]?.ready).length;
    errors.timeout = notReady - failed;
    failed = notReady;
    ok = total - notReady;
  }
  for (const a of arrivals) {
    const tab = a.user.tabs[a.t];
    if (tab) tab.onReady = tab.onFail = undefined;
  }
  return { ok, failed, errors, hist: encodeHist(hist), seconds: (performance.now() - start) / 1000 };
}

/** Starts task:update at `rate` per second over this generator's users, round robin, from tab 0. */
function loadStart({ rate, sets }) {
  const list = [...users.values()].filter((u) => (!sets || sets.includes(u.set)) && u.tabs[0]);
  load = {
    prefix: `g${genId}.${Date.now().toString(36)}.`,
    pending: new Map(),
    ackHist: newHist(),
    deliveryHist: newHist(),
    lastTabHist: newHist(),
    lagHist: newHist(),
    sent: 0, acked: 0, ackErrors: {}, delivered: 0, expected: 0, unexpected: 0, skipped: 0,
    start: performance.now(),
    stopped: false,
  };
  const L = load;
  let k = 0;
  const pump = () => {
    if (L.stopped) return;
    const now = performance.now();
    const due = L.start + (k * 1000) / rate;
    if (due <= now) recordMs(L.lagHist, now - due);
    while (L.start + (k * 1000) / rate <= now) {
      const sched = L.start + (k * 1000) / rate;
      const user = list[k % list.length];
      const n = k++;
      const tab0 = user.tabs[0];
      if (!tab0?.ready) {
        L.skipped++;
        continue;
      }
      const expected = user.tabs.filter((t) => t?.ready).length;
      const rec = { sched, got: 0, expected, acked: false };
      L.pending.set(n, rec);
      L.sent++;
      tab0.s.emit('task:update', { id: user.taskId, patch: { title: L.prefix + n } }, (res) => {
        recordMs(L.ackHist, performance.now() - sched);
        if (res?.ok) {
          L.acked++;
          L.expected += rec.expected;
          rec.acked = true;
          if (rec.got >= rec.expected) L.pending.delete(n);
        } else {
          const code = res?.error?.code ?? 'BAD_ACK';
          L.ackErrors[code] = (L.ackErrors[code] ?? 0) + 1;
          L.pending.delete(n);
        }
      });
    }
    setTimeout(pump, Math.max(1, L.start + (k * 1000) / rate - performance.now()));
  };
  if (list.length > 0 && rate > 0) pump();
  return { users: list.length };
}

async function loadStop({ drainMs }) {
  const L = load;
  if (!L) return {};
  L.stopped = true;
  const seconds = (performance.now() - L.start) / 1000;
  const end = performance.now() + drainMs;
  while (L.pending.size > 0 && performance.now() < end) await sleep(50);
  let lost = 0;
  let unacked = 0;
  for (const rec of L.pending.values()) {
    if (!rec.acked) unacked++;
    else lost += Math.max(0, rec.expected - rec.got);
  }
  load = undefined;
  return {
    seconds, sent: L.sent, acked: L.acked, ackErrors: L.ackErrors, unacked, skipped: L.skipped,
    expected: L.expected, delivered: L.delivered, lost, unexpected: L.unexpected,
    ackHist: encodeHist(L.ackHist), deliveryHist: encodeHist(L.deliveryHist), lastTabHist: encodeHist(L.lastTabHist), lagHist: encodeHist(L.lagHist),
  };
}

/**
 * A reminder:due in one tab. Its lag runs from the reminder's `firesAt` to the receipt, both on the wall clock
 * (`Date.now()`), the clock PostgreSQL's now() follows when it decides what fell due (one machine, one clock).
 * The first receipt of a task's reminder in a tab counts; any later one is a duplicate.
 */
function onReminderDue(tab, payload) {
  if (!rem) return;
  const r = payload?.reminder;
  const rec = rem.tasks.get(r?.taskId);
  if (!rec || rec.user !== tab.user) {
    rem.unexpected++;
    return;
  }
  const got = (rec.got[tab.tab] ?? 0) + 1;
  rec.got[tab.tab] = got;
  if (got > 1) {
    rem.duplicates++;
    return;
  }
  const lag = Date.now() - Date.parse(r.firesAt);
  if (Date.parse(r.firesAt) !== rec.firesAt) rem.wrongTime++;
  if (lag < 0) rem.early++;
  if (r.late) rem.late++;
  if (lag > rem.lostAfterMs) rem.afterLostWindow++;
  else rem.received++;
  recordMs(rem.lagHist, Math.max(0, lag));
  recordMs(rem.sliceHists[Math.max(0, Math.min(rem.sliceHists.length - 1, Math.floor((rec.firesAt - rem.t0) / rem.sliceMs)))], Math.max(0, lag));
  rem.lastReceiptAt = Math.max(rem.lastReceiptAt, Date.now());
}

/**
 * Sets `count` reminders through `task:create` (a new task with `remindAt`, from tab 0, as the web client does),
 * round robin over this generator's users of `sets`, at `rate` per second (open loop). Reminder k of this
 * generator is number j = k·gens + g of `total`, due at t0 + j·spreadMs/total (epoch ms), so that the
 * generators' reminders interleave evenly over the window. Every tab of the user is expected to receive it.
 */
async function remindersSet({ sets, count, total, g, gens, t0, spreadMs, rate, slices, lostAfterMs, prefix, timeoutMs = 60_000 }) {
  const list = [...users.values()].filter((u) => sets.includes(u.set) && u.tabs[0]?.ready);
  rem = {
    tasks: new Map(), t0, sliceMs: spreadMs / slices, lostAfterMs,
    lagHist: newHist(), sliceHists: Array.from({ length: slices }, () => newHist()), ackHist: newHist(),
    expected: 0, received: 0, afterLostWindow: 0, duplicates: 0, unexpected: 0, late: 0, early: 0, wrongTime: 0, disconnects: 0, lastReceiptAt: 0,
  };
  const R = rem;
  let acked = 0;
  let ackedAfterDue = 0;
  let unacked = 0;
  const ackErrors = {};
  let lastAckAt = 0;
  if (list.length === 0 || count === 0) return { users: list.length, sent: 0, acked, ackErrors, unacked, ackedAfterDue, ackHist: encodeHist(R.ackHist) };
  const start = performance.now();
  const acks = [];
  for (let k = 0; k < count; k++) {
    const sched = start + (k * 1000) / rate;
    const wait = sched - performance.now();
    if (wait > 0) await sleep(wait);
    const user = list[k % list.length];
    const firesAt = t0 + Math.floor(((k * gens + g) * spreadMs) / total);
    const id = randomUUID();
    // Registered before the create is sent: a reminder whose time passed meanwhile may arrive before the ack.
    const rec = { user, firesAt, got: [] };
    R.tasks.set(id, rec);
    acks.push(
      new Promise((resolve) => {
        const t = setTimeout(() => {
          unacked++;
          resolve();
        }, timeoutMs);
        user.tabs[0].s.emit('task:create', { id, title: `${prefix}${g}.${k}`, remindAt: new Date(firesAt).toISOString() }, (res) => {
          clearTimeout(t);
          recordMs(R.ackHist, performance.now() - sched);
          lastAckAt = Math.max(lastAckAt, Date.now());
          if (res?.ok) {
            acked++;
            if (Date.now() >= firesAt) ackedAfterDue++;
            R.expected += user.tabs.length;
          } else {
            R.tasks.delete(id);
            const code = res?.error?.code ?? 'BAD_ACK';
            ackErrors[code] = (ackErrors[code] ?? 0) + 1;
          }
          resolve();
        });
      }),
    );
  }
  await Promise.all(acks);
  return { users: list.length, sent: count, acked, ackErrors, unacked, ackedAfterDue, lastAckAt, seconds: (performance.now() - start) / 1000, ackHist: encodeHist(R.ackHist) };
}

function remindersStatus() {
  return rem ? { expected: rem.expected, received: rem.received + rem.afterLostWindow, duplicates: rem.duplicates } : { expected: 0, received: 0, duplicates: 0 };
}

/**
 * Ends the count: a tab that has not received a reminder within `lostAfterMs` of its time has lost it.
 * Returns the tallies, the lag histograms (all, and one per slice of the window by due time) and a few lost ones.
 */
function remindersCollect() {
  const R = rem;
  if (!R) return {};
  rem = undefined;
  let lost = 0;
  let fired = 0;
  const lostSample = [];
  for (const [taskId, rec] of R.tasks) {
    if (rec.got.some((n) => n > 0)) fired++;
    for (let t = 0; t < rec.user.tabs.length; t++) {
      if (rec.got[t]) continue;
      lost++;
      if (lostSample.length < 5) lostSample.push({ taskId, tab: t, firesAt: new Date(rec.firesAt).toISOString(), tabReady: !!rec.user.tabs[t]?.ready });
    }
  }
  return {
    tasks: R.tasks.size, fired, expected: R.expected, received: R.received, afterLostWindow: R.afterLostWindow, lost: lost + R.afterLostWindow, lostSample,
    duplicates: R.duplicates, unexpected: R.unexpected, late: R.late, early: R.early, wrongTime: R.wrongTime, disconnects: R.disconnects, lastReceiptAt: R.lastReceiptAt,
    lagHist: encodeHist(R.lagHist), sliceHists: R.sliceHists.map(encodeHist),
  };
}

/**
 * One chat:send per user (tab 0) for `count` users, spread evenly over `spreadMs`
 * (open loop); every tab records its deltas (epoch ms, cumulative length).
 */
async function chat({ count, keyPrefix, timeoutMs, spreadMs = 0 }) {
  const list = [...users.values()].filter((u) => u.tabs.length > 0 && u.tabs.every((t) => t?.ready)).slice(0, count);
  const streams = {};
  for (const [i, user] of list.entries()) {
    const key = `${keyPrefix}.${genId}.${i}`;
    const n = user.tabs.length;
    const st = { key, messageId: undefined, tabs: Array.from({ length: n }, () => []), len: new Array(n).fill(0), seqs: new Array(n).fill(0), done: new Array(n).fill(false), doneCount: 0, seqErrors: 0, sendAt: epochMs(), ack: null };
    user.stream = st;
    streams[key] = st;
    const send = () => {
      st.sendAt = epochMs();
      // with an id, as the web client sends it (CHAT-1: a retry returns the first result)
      user.tabs[0].s.emit('chat:send', { id: randomUUID(), content: `Please answer at length [bench:${key}]` }, (res) => {
        st.ack = res?.ok ? 'ok' : (res?.error?.code ?? 'BAD_ACK');
        if (res?.ok) st.messageId = res.data.assistantMessageId;
      });
    };
    if (spreadMs > 0) setTimeout(send, (i * spreadMs) / list.length);
    else send();
  }
  const end = performance.now() + timeoutMs;
  const allDone = () => Object.values(streams).every((st) => st.doneCount >= st.tabs.length || (st.ack && st.ack !== 'ok'));
  while (!allDone() && performance.now() < end) await sleep(100);
  for (const u of list) u.stream = undefined;
  const out = {};
  for (const st of Object.values(streams)) out[st.key] = { ack: st.ack, tabs: st.tabs, done: st.doneCount, seqErrors: st.seqErrors, sendAt: st.sendAt };
  return { streams: out };
}

function status({ since, sets }) {
  let total = 0;
  let ready = 0;
  const times = [];
  for (const t of tabs) {
    if (sets && !sets.includes(t.set)) continue;
    total++;
    if (t.ready) ready++;
    if (t.ready && t.readyAt > since) times.push(t.readyAt);
  }
  return { total, ready, times };
}

function disconnect({ sets }) {
  let n = 0;
  for (const t of tabs) {
    if (sets && !sets.includes(t.set)) continue;
    t.closing = true;
    t.s.disconnect();
    tabs.delete(t);
    n++;
  }
  for (const [id, u] of users) if (!sets || sets.includes(u.set)) users.delete(id);
  return { closed: n };
}

/** A full GC (between scenarios: the sockets of the last one are garbage, and collecting them mid-window would delay receipts). */
function gc() {
  globalThis.gc?.();
  return {};
}

const commands = { connect, loadStart, loadStop, chat, remindersSet, remindersStatus, remindersCollect, status, disconnect, gc };

process.on('message', async (msg) => {
  if (msg?.cmd === 'exit') {
    disconnect({});
    process.exit(0);
  }
  const fn = commands[msg?.cmd];
  try {
    const result = fn ? await fn(msg.args ?? {}) : { error: `unknown command ${msg?.cmd}` };
    process.send({ id: msg.id, result });
  } catch (err) {
    process.send({ id: msg.id, error: String(err?.stack ?? err) });
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ cmd: 'up' });
