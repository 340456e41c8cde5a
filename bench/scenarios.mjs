// The scenarios, run against one kind of server (Sam or bare) by scripts/bench.mjs; reminders are Sam's only.
import { fork } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { epochMs, mergeHists, newHist, nodeArgsFrom, pct, recordMs, settle, sleep, summary } from './lib.mjs';
import { children, cpuByRole, cpuOf, cpuSpent, heapOf, root, rssOf } from './servers.mjs';

/** The generator processes, each on its own 127.0.0.x source addresses. */
export class Generators {
  constructor(count, { nice = 0 } = {}) {
    this.count = count;
    this.nice = nice;
    this.procs = [];
    this.seq = 0;
    this.waiting = new Map();
  }

  async start() {
    for (let g = 0; g < this.count; g++) {
      // 4 source addresses each: the ephemeral port range applies per (source, destination) pair.
      const addrs = [0, 1, 2, 3].map((a) => `127.0.0.${2 + g * 4 + a}`).join(',');
      // --heap-growing-percent=100: the three generators get the same load, and without it V8 had all three
      // start a major GC at about the same moment, every few seconds; their marking then took the cores from
      // the server (bench/README.md, "Generators' heap growth").
      const execArgv = ['--max-old-space-size=4096', '--heap-growing-percent=100', '--expose-gc', ...nodeArgsFrom('BENCH_GEN_NODE_ARGS')];
      const child = fork(path.join(root, 'bench/generator.mjs'), [], { cwd: root, env: { PATH: process.env.PATH, GEN_ID: String(g), LOCAL_ADDRESSES: addrs }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
      child.benchName = `gen${g}`;
      // --nice-generators: the generators stand in for clients on other machines; at a lower CPU priority
      // they leave the cores to the server side first (Sam, PostgreSQL and Redis, or bare).
      if (this.nice) os.setPriority(child.pid, this.nice);
      children.add(child);
      child.once('exit', () => children.delete(child));
      await new Promise((resolve) => child.once('message', resolve));
      child.on('message', (m) => {
        const w = this.waiting.get(m?.id);
        if (!w) return;
        this.waiting.delete(m.id);
        if (m.error) w.reject(new Error(m.error));
        else w.resolve(m.result);
      });
      this.procs.push(child);
    }
  }

  call(g, cmd, args) {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.procs[g].send({ id, cmd, args });
    });
  }

  /** Runs `cmd` on every generator; `argsOf(g)` gives its arguments. */
  all(cmd, argsOf = () => ({})) {
    return Promise.all(this.procs.map((_, g) => this.call(g, cmd, argsOf(g))));
  }

  /** Users split round robin over generators. */
  split(users) {
    const parts = this.procs.map(() => []);
    users.forEach((u, i) => parts[i % this.count].push(u));
    return parts;
  }

  stop() {
    for (const p of this.procs) p.connected && p.send({ cmd: 'exit' });
  }
}

const sum = (xs, f) => xs.reduce((a, x) => a + (f(x) ?? 0), 0);
const mergeErr = (rs, f) => {
  const out = {};
  for (const r of rs) for (const [k, v] of Object.entries(f(r) ?? {})) out[k] = (out[k] ?? 0) + v;
  return out;
};

/**
 * A failed step (a rate or socket step whose p99, loss or errors miss its threshold) runs once more before
 * its phase counts it as failed: the first window of a process can hold a one-off (a major GC, code still
 * being compiled) that says nothing of what it sustains. Each server gets the same time budget for retries,
 * so that Sam and bare are treated alike and the run keeps its length. Every retry is recorded (`list`),
 * and the report prints them.
 */
export class Retries {
  constructor(budgetMs, log) {
    this.budgetMs = budgetMs;
    this.spentMs = 0;
    this.list = [];
    this.log = log;
  }

  /**
   * `again()` runs the step once more unless the budget is spent; `whyFailed(result)` says why a result fails
   * (null when it passes). Returns the retry's result, or null when there was none.
   */
  async retry({ phase, step, why }, again, whyFailed) {
    if (this.spentMs >= this.budgetMs) {
      this.list.push({ phase, step, first: why, retried: false });
      this.log(`  ${step}: ${why}; not retried (retry budget of ${this.budgetMs / 1000} s spent)`);
      return null;
    }
    this.log(`  ${step}: ${why}; retrying once`);
    const t0 = Date.now();
    const result = await again();
    this.spentMs += Date.now() - t0;
    const second = whyFailed(result);
    this.list.push({ phase, step, first: why, retried: true, passed: !second, second: second ?? 'passed' });
    return result;
  }
}

/** Opens 3 tabs for each user at `rate` tabs per second in total; with several urls, a user's tabs take them in turn. */
export async function connectUsers(gens, { users, urls, set, rate, timeoutMs = 60_000 }) {
  const parts = gens.split(users);
  const rs = await gens.all('connect', (g) => ({ set, list: parts[g], urls, tabsPerUser: 3, rate: Math.max(1, rate / gens.count), timeoutMs }));
  return {
    ok: sum(rs, (r) => r.ok),
    failed: sum(rs, (r) => r.failed),
    errors: mergeErr(rs, (r) => r.errors),
    connect: summary(mergeHists(rs.map((r) => r.hist))),
  };
}

/** Runs task:update at `rate` per second for `ms`, then drains; returns merged figures. */
export async function runLoad(gens, { rate, ms, drainMs = 3_000, sets, during }) {
  await gens.all('loadStart', () => ({ rate: rate / gens.count, sets }));
  const extra = during ? await during() : await sleep(ms);
  const rs = await gens.all('loadStop', () => ({ drainMs }));
  return { ...loadFigures(rs, rate), extra };
}

function loadFigures(rs, rate) {
  const seconds = Math.max(...rs.map((r) => r.seconds ?? 0));
  return {
    offeredPerSec: rate,
    achievedPerSec: seconds ? Math.round(sum(rs, (r) => r.acked) / seconds) : 0,
    sent: sum(rs, (r) => r.sent),
    acked: sum(rs, (r) => r.acked),
    ackErrors: mergeErr(rs, (r) => r.ackErrors),
    unacked: sum(rs, (r) => r.unacked),
    skipped: sum(rs, (r) => r.skipped),
    expectedDeliveries: sum(rs, (r) => r.expected),
    delivered: sum(rs, (r) => r.delivered),
    lost: sum(rs, (r) => r.lost),
    unexpected: sum(rs, (r) => r.unexpected),
    ack: summary(mergeHists(rs.map((r) => r.ackHist))),
    delivery: summary(mergeHists(rs.map((r) => r.deliveryHist))),
    lastTab: summary(mergeHists(rs.map((r) => r.lastTabHist))),
    generatorLag: summary(mergeHists(rs.map((r) => r.lagHist))),
  };
}

async function readyCount(gens, sets) {
  const rs = await gens.all('status', () => ({ since: Infinity, sets }));
  return { total: sum(rs, (r) => r.total), ready: sum(rs, (r) => r.ready) };
}

const memOf = async (nodes) => {
  const rss = nodes.map((n) => rssOf(n.child.pid));
  const heaps = await Promise.all(nodes.map((n) => heapOf(n)));
  return { rss: rss.reduce((a, b) => a + (b ?? 0), 0), heap: heaps.every((h) => h !== null) ? heaps.reduce((a, b) => a + b, 0) : null };
};

/** A full GC on each of these nodes (every memory reading collects first) and in every generator. */
export async function collectGarbage(gens, nodes) {
  await Promise.all([nodes.length > 0 ? memOf(nodes) : null, gens.all('gc')]);
}

/**
 * The memory of `nodes` before any socket: RSS (read before the heap is collected) and heap after a full GC,
 * on quiet, collected processes. The capacity phase reads it before its warm-up, on the fresh process, so
 * that the warm-up does not move the baseline its RSS per socket is measured from.
 */
export async function memoryBaseline(gens, nodes) {
  await collectGarbage(gens, nodes);
  await settle({ maxMs: 3_000 });
  await sleep(1_000);
  return memOf(nodes);
}

/**
 * A warm-up: opens `users`' tabs (set `warm`) at `rate`, optionally runs task updates over them, and closes
 * them again. Nothing is measured: the process under test runs this work once before the phase's figures.
 */
export async function warmConnects(gens, { users, urls, rate, loadRate = 0, loadMs = 0 }) {
  const c = await connectUsers(gens, { users, urls, set: 'warm', rate, timeoutMs: 20_000 });
  if (loadRate && loadMs) await runLoad(gens, { rate: loadRate, ms: loadMs, drainMs: 1_000, sets: ['warm'] });
  // No wait after closing: the phase collects garbage and waits for a quiet machine next.
  await gens.all('disconnect', () => ({ sets: ['warm'] }));
  return `${c.ok} connects at ${rate}/s${loadRate && loadMs ? `, ${loadRate} updates/s for ${loadMs / 1000} s` : ''}${c.failed ? `, ${c.failed} failed` : ''}`;
}

/** A few logins, unmeasured, at `rate` per second (a warm-up for scenario 5). */
export async function warmLogins(node, { pool, password, count, rate }) {
  const statuses = {};
  const start = performance.now();
  const inflight = [];
  for (let i = 0; i < count; i++) {
    const wait = start + (i * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    inflight.push(login(node, pool[i % pool.length], password, 10_000).then((status) => (statuses[status] = (statuses[status] ?? 0) + 1)));
  }
  await Promise.all(inflight);
  return `${count} logins at ${rate}/s (${Object.entries(statuses).map(([k, v]) => `${v}× ${k}`).join(', ')})`;
}

/** POST /api/v1/auth/login; resolves to the HTTP status, or the error's name. */
function login(node, user, password, timeoutMs) {
  return fetch(`${node.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: user.email, password }), signal: AbortSignal.timeout(timeoutMs) })
    .then(async (r) => {
      await r.arrayBuffer();
      return r.status;
    })
    .catch((e) => e.name);
}

/**
 * Scenario 7 (Sam only: bare has no reminders): `count` reminders due evenly over `spreadMs`, set through
 * `task:create` with `remindAt` over the connected users (`sets`), whose tabs are spread over both nodes.
 * Setting them runs at `setRate` before the window, which starts `leadMs` after setting is planned to end, so
 * that the creates' own load is over when the first reminder falls due. Every tab of the user counts each
 * reminder: lag (receipt − `firesAt`), lost (not received within `lostAfterMs`), duplicated, late. CPU by role
 * runs from just before the first reminder's time to the last receipt; then the count stays open `quietMs`
 * more, longer than a firing lease, so that a reminder fired twice shows. `dbStats(from, to)` reads the
 * reminders' rows afterwards (states, and when the server marked each delivered).
 */
export async function reminders(ctx, { sets, count, spreadMs, setRate, leadMs, lostAfterMs, quietMs, slices = 6, dbStats, log, quiet = false }) {
  const { gens } = ctx;
  const say = quiet ? () => {} : log;
  const t0 = Date.now() + Math.round((1000 * count) / setRate) + leadMs;
  const set = await gens.all('remindersSet', (g) => ({
    sets, count: Math.ceil((count - g) / gens.count), total: count, g, gens: gens.count, t0, spreadMs, rate: setRate / gens.count, slices, lostAfterMs, prefix: `rem.${t0.toString(36)}.`,
  }));
  const setup = {
    users: sum(set, (r) => r.users), sent: sum(set, (r) => r.sent), acked: sum(set, (r) => r.acked), unacked: sum(set, (r) => r.unacked),
    ackErrors: mergeErr(set, (r) => r.ackErrors), ackedAfterDue: sum(set, (r) => r.ackedAfterDue), ack: summary(mergeHists(set.map((r) => r.ackHist))),
    seconds: Math.round(10 * Math.max(...set.map((r) => r.seconds ?? 0))) / 10, doneBeforeFirstDueMs: t0 - Math.max(...set.map((r) => r.lastAckAt ?? 0)),
  };
  say(`  set ${setup.acked}/${count} reminders over ${setup.users} users in ${setup.seconds} s (task:create ack p50 ${setup.ack.p50} p99 ${setup.ack.p99} ms, ${setup.unacked} unacked, errors ${JSON.stringify(setup.ackErrors)}); the last ack ${(setup.doneBeforeFirstDueMs / 1000).toFixed(1)} s before the first is due, ${setup.ackedAfterDue} acked after their own time`);
  // The machine at rest with the tabs connected (from 2 s after the last ack to the window): what the window
  // would have cost without a reminder (pings, polls), so that CPU per reminder can leave it out.
  await sleep(Math.max(...set.map((r) => r.lastAckAt ?? 0)) + 2_000 - Date.now());
  const idle0 = cpuByRole();
  const i0 = performance.now();
  await sleep(t0 - 500 - Date.now());
  const cpu0 = cpuByRole();
  const idleMs = performance.now() - i0;
  const w0 = performance.now();
  const deadline = t0 + spreadMs + lostAfterMs;
  let st;
  for (;;) {
    const rs = await gens.all('remindersStatus');
    st = { expected: sum(rs, (r) => r.expected), received: sum(rs, (r) => r.received) };
    if (st.received >= st.expected || Date.now() > deadline) break;
    await sleep(100);
  }
  const spent = cpuSpent(cpu0, cpuByRole());
  const wallMs = Math.round(performance.now() - w0);
  await sleep(quietMs);
  const rs = await gens.all('remindersCollect');
  const lag = summary(mergeHists(rs.map((r) => r.lagHist)));
  const fired = sum(rs, (r) => r.fired);
  const out = {
    reminders: count, spreadMs, setup,
    tabDeliveriesExpected: sum(rs, (r) => r.expected), received: sum(rs, (r) => r.received), fired,
    lost: sum(rs, (r) => r.lost), afterLostWindow: sum(rs, (r) => r.afterLostWindow), lostSample: rs.flatMap((r) => r.lostSample).slice(0, 5),
    duplicates: sum(rs, (r) => r.duplicates), unexpected: sum(rs, (r) => r.unexpected), late: sum(rs, (r) => r.late), early: sum(rs, (r) => r.early),
    wrongTime: sum(rs, (r) => r.wrongTime), disconnects: sum(rs, (r) => r.disconnects),
    lagMs: lag,
    // lag by due time, one slice per spreadMs / slices: a lag that grows across the window is a backlog
    lagBySliceMs: rs[0].sliceHists.map((_, i) => summary(mergeHists(rs.map((r) => r.sliceHists[i])))),
    lastReceiptAfterLastDueMs: Math.max(...rs.map((r) => r.lastReceiptAt)) - (t0 + spreadMs),
    // from just before the first reminder's time to the last receipt, per reminder fired (each to 3 tabs)
    cpu: { wallMs, ...perUnit(spent, fired), aboveRest: idleMs >= 2_000 ? aboveRest(spent, wallMs, { ms: cpuSpent(idle0, cpu0), wallMs: idleMs }, fired) : null },
    db: dbStats ? await dbStats(new Date(t0), new Date(t0 + spreadMs)) : null,
  };
  const per = out.cpu.msPer;
  say(`  ${fired}/${count} fired; ${out.received}/${out.tabDeliveriesExpected} tab deliveries: lag p50 ${lag.p50} p99 ${lag.p99} max ${lag.max} ms; lost ${out.lost}, duplicated ${out.duplicates}, late ${out.late}, unexpected ${out.unexpected}, disconnects ${out.disconnects}`);
  say(`  lag p99 in each ${slices}th of the window by due time (ms): ${out.lagBySliceMs.map((x) => x.p99).join(', ')}; server marked delivered (fired_at − fires_at) p50 ${out.db?.firedLagMs?.p50} p99 ${out.db?.firedLagMs?.p99} ms; states ${JSON.stringify(out.db?.states)}`);
  const rounds = out.db?.rounds;
  if (rounds) say(`  ${rounds.count} claim rounds fired them (both nodes), ${rounds.remindersP50} reminders each at p50, ${rounds.remindersMax} at most; gap between rounds p10/p50/p90 ${rounds.gapMs.p10}/${rounds.gapMs.p50}/${rounds.gapMs.p90} ms`);
  const above = out.cpu.aboveRest;
  say(`  CPU ms per reminder fired: server ${per.server}, PostgreSQL ${per.postgres}, Redis ${per.redis}, generators ${per.generators}; idle ${Math.round((spent.idle / wallMs) * 100)}% of a core${above ? `; ${aboveRestText(above, `above the machine at rest (${(idleMs / 1000).toFixed(1)} s before)`)}` : ''}`);
  return out;
}

/**
 * The machine at rest with the phase's tabs connected, before its first window: CPU ms by role over `ms`. What
 * a server spends with nothing asked of it (its timers, its sockets' pings) is not any operation's, so each
 * window also says what it cost above this (`aboveRest`), the marginal cost of an operation. With tabs
 * connected, `ms` is a whole ping interval: their pings come in waves (bench/README.md, "Where Sam's CPU per operation goes").
 */
async function restReading(log, ms = 3_000) {
  const cpu0 = cpuByRole();
  const t0 = performance.now();
  await sleep(ms);
  const spent = cpuSpent(cpu0, cpuByRole());
  const wallMs = Math.round(performance.now() - t0);
  const perSec = (role) => Math.round((1000 * spent[role]) / wallMs);
  log(`  at rest (${(wallMs / 1000).toFixed(1)} s): CPU ms per second: server ${perSec('server')}, PostgreSQL ${perSec('postgres')}, Redis ${perSec('redis')}, generators ${perSec('generators')}`);
  return { ms: spent, wallMs };
}

/** CPU ms per unit by role, of a window of `wallMs` that spent `spent`, above a resting reading `rest` ({ ms, wallMs }) scaled to the window's length. */
function aboveRest(spent, wallMs, rest, units) {
  const scale = wallMs / rest.wallMs;
  const out = {};
  for (const role of ['server', 'postgres', 'redis', 'generators']) out[role] = units ? Math.round((1000 * (spent[role] - scale * rest.ms[role])) / units) / 1000 : null;
  return out;
}

/** An `aboveRest` result for the log. */
const aboveRestText = (above, label = 'above rest') => `${label}: server ${above.server}, PostgreSQL ${above.postgres}, Redis ${above.redis}`;

/** Why a capacity window fails (null when it holds). */
const capacityFailure = (c, load) =>
  c.failed ? `${c.failed} connects failed` : load.ack.p99 === null ? 'no ack' : load.ack.p99 > 50 ? `ack p99 ${load.ack.p99} ms > 50` : load.unacked ? `${load.unacked} updates unacked` : null;

/**
 * Scenario 1: ramp authenticated sockets (3 per user) in steps; at each step run
 * the background load (one task:update per user every 10 s) for a window and read
 * the ack p99, RSS and heap, per socket against `base` (a `memoryBaseline`). Stops
 * at the first step whose ack p99 exceeds 50 ms or whose connects fail.
 */
export async function capacity(ctx, nodes, { steps, windowMs, connectRate, pool, urls, budgetEndsAt, log, base: given, keepAtMost }) {
  const { gens } = ctx;
  const base = given ?? (await memoryBaseline(gens, nodes));
  const out = { baseRssBytes: base.rss, baseHeapBytes: base.heap, steps: [], largestOkStep: 0 };
  let connectedUsers = 0;
  for (const [i, step] of steps.entries()) {
    if (Date.now() > budgetEndsAt) {
      out.stoppedBy = 'time budget';
      break;
    }
    const users = pool.slice(connectedUsers, Math.floor(step / 3));
    const c = await connectUsers(gens, { users, urls, set: `cap${i}`, rate: connectRate });
    connectedUsers += users.length;
    await sleep(1_000);
    const { ready } = await readyCount(gens);
    const bgRate = Math.max(1, Math.round(connectedUsers / 10));
    // The window, then the memory reading (which collects garbage first, so that a retry starts collected too).
    const measure = async () => {
      const cpu0 = nodes.map((n) => cpuOf(n.child.pid));
      const load = await runLoad(gens, { rate: bgRate, ms: windowMs, drainMs: 2_000 });
      const cpu = nodes.map((n, k) => Math.round((100 * (cpuOf(n.child.pid) - cpu0[k])) / (windowMs / 1000 + 2)));
      return { load, cpu, mem: await memOf(nodes) };
    };
    let m = await measure();
    let why = capacityFailure(c, m.load);
    let firstAttempt;
    // Failed connects are not retried: the window can run again, the connects cannot.
    if (why && !c.failed && ctx.retries) {
      const again = await ctx.retries.retry({ phase: '1. capacity', step: `${step} sockets`, why }, measure, (x) => capacityFailure(c, x.load));
      if (again) {
        firstAttempt = { ack: m.load.ack, unacked: m.load.unacked, why };
        m = again;
        why = capacityFailure(c, m.load);
      }
    }
    const { load, cpu, mem } = m;
    const row = {
      step, sockets: ready, connectFailed: c.failed, connectErrors: c.errors, connect: c.connect, bgRatePerSec: bgRate,
      ack: load.ack, ackErrors: load.ackErrors, unacked: load.unacked, lost: load.lost, delivery: load.delivery, generatorLag: load.generatorLag,
      serverCpuPct: cpu, rssBytes: mem.rss, heapBytes: mem.heap,
      rssPerSocketBytes: ready ? Math.round((mem.rss - base.rss) / ready) : null,
      heapPerSocketBytes: ready && mem.heap !== null && base.heap !== null ? Math.round((mem.heap - base.heap) / ready) : null,
      ...(firstAttempt ? { firstAttempt } : {}),
    };
    out.steps.push(row);
    log(`  step ${step}: ${ready} sockets, ack p99 ${row.ack.p99} ms${firstAttempt ? ' (retried)' : ''}, RSS/socket ${(row.rssPerSocketBytes / 1024).toFixed(1)} KB, cpu ${cpu.join('+')}%, connect failed ${c.failed}`);
    if (why) {
      out.stoppedBy = why;
      break;
    }
    out.largestOkStep = step;
    out.largestOkIndex = i;
  }
  // Leave exactly the largest good step connected (at least the first step) for the next scenarios, or the largest
  // step of at most `keepAtMost` sockets (bare after Sam: the next scenarios compare them at the same load).
  const matched = keepAtMost ? steps.findLastIndex((step) => step <= keepAtMost) : Infinity;
  const keep = Math.max(0, Math.min(out.largestOkIndex ?? 0, matched));
  if (keep < (out.largestOkIndex ?? 0)) log(`  keeping ${steps[keep]} sockets for the next scenarios, as the other server had`);
  const drop = steps.map((_, i) => `cap${i}`).filter((_, i) => i > keep);
  if (drop.length) await gens.all('disconnect', () => ({ sets: drop }));
  await sleep(1_000);
  // The next phases start from a collected heap: a step dropped here leaves its sockets' objects for the
  // server's next full GC, whose pause would otherwise land in the fan-out (a server that passed every
  // step drops nothing). Both kinds collect here, as they do at every step's memory reading.
  if (drop.length) await memOf(nodes);
  out.remaining = (await readyCount(gens)).ready;
  return out;
}

/** CPU ms by role (a `cpuSpent` result) and per unit of work (update, connect), idle left out of the latter. */
function perUnit(spent, units) {
  const msPer = {};
  for (const [role, ms] of Object.entries(spent)) if (role !== 'idle') msPer[role] = units ? Math.round((1000 * ms) / units) / 1000 : null;
  return { ms: spent, msPer, units };
}

/** Why a two-node capacity window fails (null when it holds). */
const twoNodeFailure = (c, load) => capacityFailure(c, load) ?? (load.lost ? `${load.lost} deliveries lost` : null);

/**
 * Scenario 6's capacity check: more users' tabs spread over both nodes, in steps (users in all at each), each
 * step's ack p99 under one task update per user every 10 s as in 1. A step's window starts after a full GC on
 * both nodes and in the generators (`collectGarbage`, as every scenario starts): connecting thousands of
 * sockets at once leaves their handshakes' garbage, and the major GC it brings would otherwise land in the
 * window. Returns the largest step that holds (or the first), with every step.
 */
export async function twoNodeCapacity(ctx, nodes, { userSteps, connectedUsers, connectedSockets, pool, connectRate, windowMs, phase, log }) {
  const { gens } = ctx;
  const steps = [];
  let users = connectedUsers;
  let sockets = connectedSockets;
  for (const [i, target] of userSteps.entries()) {
    const step = await phase(target * 3, async () => {
      const c = await connectUsers(gens, { users: pool.slice(users, target), urls: nodes.map((n) => n.url), set: `two${i + 2}`, rate: connectRate });
      await sleep(1_000);
      const measure = async () => {
        await collectGarbage(gens, nodes);
        return runLoad(gens, { rate: Math.round(target / 10), ms: windowMs, drainMs: 2_000 });
      };
      let load = await measure();
      const why = twoNodeFailure(c, load);
      let firstAttempt;
      if (why && !c.failed && ctx.retries) {
        const again = await ctx.retries.retry({ phase: '6. two-node capacity', step: `${target * 3} sockets`, why }, measure, (x) => twoNodeFailure(c, x));
        if (again) {
          firstAttempt = { ack: load.ack, lost: load.lost, unacked: load.unacked, why };
          load = again;
        }
      }
      return { c, load, firstAttempt };
    });
    users = target;
    sockets += step.c.ok;
    steps.push({ sockets, connectFailed: step.c.failed, connectErrors: step.c.errors, ack: step.load.ack, lost: step.load.lost, unacked: step.load.unacked, ...(step.firstAttempt ? { firstAttempt: step.firstAttempt } : {}) });
    log(`  ${sockets} sockets on two nodes: ack p99 ${step.load.ack.p99} ms${step.firstAttempt ? ' (retried)' : ''}, connect failed ${step.c.failed}`);
  }
  const holds = (st) => st.ack.p99 !== null && st.ack.p99 <= 50 && st.lost === 0 && st.unacked === 0 && st.connectFailed === 0;
  return { ...(steps.findLast(holds) ?? steps[0]), steps };
}

/** Why a fan-out window fails (null when it holds). */
function fanoutFailure(r, rate) {
  if (r.delivery.p99 === null) return 'nothing delivered';
  if (r.delivery.p99 > 50) return `delivery p99 ${r.delivery.p99} ms > 50`;
  if (r.lost) return `${r.lost} deliveries lost`;
  if (r.unacked) return `${r.unacked} updates unacked`;
  if (Object.keys(r.ackErrors).length) return `ack errors ${JSON.stringify(r.ackErrors)}`;
  if (r.achievedPerSec < 0.95 * rate) return `achieved ${r.achievedPerSec}/s`;
  return null;
}

/**
 * Scenario 3 (and 6): task:update rates raised over the connected users; every delivery counted. The ramp
 * stops when a rate saturates (p99 over a second). With `cpuWindowMs`, `cpuRate` then runs that long once more
 * (`cpuWindow`, not counted for the capacity), the CPU per update of record; without it, when the ramp stopped
 * below `cpuRate`, `cpuRate` runs once more as a step (`cpuOnly`) so that its CPU per update can be set against bare's.
 */
export async function fanout(ctx, { rates, ms, budgetEndsAt, log, drainMs = 3_000, cpuRate, cpuWindowMs = 0, readRest = true, phase = '3. fan-out' }) {
  // capacityPerSec: the highest rate that held, 0 when none did, null when none ran (the time budget was spent).
  const out = { rows: [], capacityPerSec: null };
  if (readRest) out.rest = await restReading(log, cpuWindowMs || undefined);
  const measure = async (rate, loadMs = ms) => {
    // Where the window's CPU went (load and drain), per acknowledged update: the server's own share and
    // that of the processes it waits on (PostgreSQL, Redis) or that load it (the generators).
    const { r, spent, wallMs } = await loadRound(ctx, { rate, ms: loadMs, drainMs });
    r.cpu = { wallMs, ...perUnit(spent, r.acked), ...(out.rest && { aboveRest: aboveRest(spent, wallMs, out.rest, r.acked) }) };
    const per = r.cpu.msPer;
    const above = r.cpu.aboveRest;
    log(`  ${rate}/s: achieved ${r.achievedPerSec}/s, delivery p50 ${r.delivery.p50} p99 ${r.delivery.p99} p99.9 ${r.delivery.p999} ms, last tab p99 ${r.lastTab.p99} ms, lost ${r.lost}, unacked ${r.unacked}, gen lag p99 ${r.generatorLag.p99} ms`);
    log(`    CPU ms per update: server ${per.server}, PostgreSQL ${per.postgres}, Redis ${per.redis}, generators ${per.generators}, bench ${per.bench}, other ${per.other}; idle ${Math.round(spent.idle / r.cpu.wallMs * 100)}% of a core${above ? `; ${aboveRestText(above)}` : ''}`);
    await sleep(500);
    return r;
  };
  for (const rate of rates) {
    if (Date.now() > budgetEndsAt) {
      out.stoppedBy = 'time budget';
      log(`  time budget spent: ${rate}/s and above not run`);
      break;
    }
    let r = await measure(rate);
    let why = fanoutFailure(r, rate);
    if (why && ctx.retries && Date.now() < budgetEndsAt) {
      const again = await ctx.retries.retry({ phase, step: `${rate}/s`, why }, () => measure(rate), (x) => fanoutFailure(x, rate));
      if (again) {
        again.firstAttempt = { delivery: r.delivery, lost: r.lost, unacked: r.unacked, achievedPerSec: r.achievedPerSec, why };
        r = again;
        why = fanoutFailure(r, rate);
      }
    }
    out.rows.push(r);
    if (!why) out.capacityPerSec = rate;
    if (why && (r.delivery.p99 ?? Infinity) > 1_000) {
      out.stoppedBy = 'saturated';
      break;
    }
  }
  if (out.rows.length > 0) out.capacityPerSec ??= 0;
  if (cpuRate && cpuWindowMs) {
    // The figure of record: the tabs' pings come in waves, one cycle per ping interval, and a 5 s window may
    // catch a wave or miss it, so it is read over a whole interval (`cpuWindowMs`), as the rest is.
    log(`  ${cpuRate}/s for ${cpuWindowMs / 1000} s, one ping interval, for its CPU per update only`);
    out.cpuWindow = await measure(cpuRate, cpuWindowMs);
  } else if (out.stoppedBy === 'saturated' && cpuRate && rates.includes(cpuRate) && !out.rows.some((r) => r.offeredPerSec === cpuRate)) {
    log(`  ${cpuRate}/s once more for its CPU per update only`);
    out.rows.push({ ...(await measure(cpuRate)), cpuOnly: true });
  }
  return out;
}

/**
 * One window of 3's work: `task:update` at `rate` for `ms` (then drained) from the tabs of `sets` (default: every
 * tab), with the CPU it cost by role (with `ctx.measuredPid`, only that node counts as the server).
 */
async function loadRound(ctx, { rate, ms, drainMs, sets }) {
  const cpu0 = cpuByRole(ctx.measuredPid);
  const t0 = performance.now();
  const r = await runLoad(ctx.gens, { rate, ms, drainMs, sets });
  return { r, spent: cpuSpent(cpu0, cpuByRole(ctx.measuredPid)), wallMs: Math.round(performance.now() - t0) };
}

/** Scenario 2b: restart the node with its sockets connected; time until 99% are back (session:ready again). */
export async function reconnectStorm(ctx, node, { restart, timeoutMs, log }) {
  const { gens } = ctx;
  const before = await readyCount(gens);
  const t0 = epochMs();
  const fresh = await restart();
  const upMs = epochMs() - t0;
  const need = Math.ceil(0.99 * before.ready);
  const end = Date.now() + timeoutMs;
  let times = [];
  while (Date.now() < end) {
    const rs = await gens.all('status', () => ({ since: t0 }));
    times = rs.flatMap((r) => r.times);
    if (times.length >= before.ready) break;
    await sleep(250);
  }
  times.sort((a, b) => a - b);
  const at = (k) => (times.length >= k && k > 0 ? Math.round(times[k - 1] - t0) : null);
  const r = { sockets: before.ready, back: times.length, oldStoppedAfterMs: fresh.previousStoppedAfterMs, serverUpAfterMs: Math.round(upMs), ms50: at(Math.ceil(0.5 * before.ready)), ms99: at(need), ms100: at(before.ready) };
  log(`  ${r.sockets} sockets: old process gone after ${r.oldStoppedAfterMs} ms, server up after ${r.serverUpAfterMs} ms, 99% back after ${r.ms99} ms, ${r.back} back`);
  return { result: r, node: fresh };
}

/** Why a handshake step fails (null when it holds). */
const handshakeFailure = (row) => (row.failed ? `${row.failed} connects failed` : row.connect.p99 === null ? 'no connect' : row.connect.p99 > 100 ? `connect p99 ${row.connect.p99} ms > 100` : null);

/**
 * One round of 2a's work: users' tabs (3 each) connected at `rate` for `ms` to `urls`, with the CPU they cost by
 * role (with `ctx.measuredPid`, only that node counts as the server), then closed again.
 */
async function connectRound(ctx, { rate, ms, pool, urls }) {
  const count = Math.round((rate * ms) / 1000 / 3);
  const cpu0 = cpuByRole(ctx.measuredPid);
  const t0 = performance.now();
  const connected = await connectUsers(ctx.gens, { users: pool.slice(0, count), urls, set: 'hs', rate, timeoutMs: 30_000 });
  const spent = cpuSpent(cpu0, cpuByRole(ctx.measuredPid));
  const wallMs = performance.now() - t0;
  await ctx.gens.all('disconnect', () => ({ sets: ['hs'] }));
  return { sockets: count * 3, connected, spent, wallMs };
}

/**
 * Scenario 2a: authenticated connects per second at fixed arrival rates; connect p99 from the scheduled arrival
 * to session:ready. The ramp stops at the first failed rate; when that is below `cpuRate`, `cpuRate` still runs
 * once (`cpuOnly`, not counted) so that its CPU per connect can be set against bare's.
 */
export async function handshakes(ctx, { rates, ms, pool, urls, budgetEndsAt, log, cpuRate, settleMaxMs = 10_000 }) {
  const out = { rows: [], maxRateP99Under100: 0 };
  out.rest = await restReading(log);
  const step = async (rate) => {
    const { sockets, connected: c, spent, wallMs } = await connectRound(ctx, { rate, ms, pool, urls });
    const row = { rate, sockets, ok: c.ok, failed: c.failed, errors: c.errors, connect: c.connect, cpu: { ...perUnit(spent, c.ok), aboveRest: aboveRest(spent, wallMs, out.rest, c.ok) } };
    const per = row.cpu.msPer;
    const above = row.cpu.aboveRest;
    log(`  ${rate}/s: connect p50 ${c.connect.p50} p99 ${c.connect.p99} ms, failed ${c.failed}; CPU ms per connect: server ${per.server}, PostgreSQL ${per.postgres}, Redis ${per.redis}, generators ${per.generators}; ${aboveRestText(above)}`);
    await settle({ maxMs: settleMaxMs });
    return row;
  };
  for (const rate of rates) {
    if (Date.now() > budgetEndsAt) {
      out.stoppedBy = 'time budget';
      break;
    }
    let row = await step(rate);
    let why = handshakeFailure(row);
    if (why && ctx.retries) {
      const again = await ctx.retries.retry({ phase: '2a. handshakes', step: `${rate}/s`, why }, () => step(rate), handshakeFailure);
      if (again) {
        again.firstAttempt = { connect: row.connect, failed: row.failed, why };
        row = again;
        why = handshakeFailure(row);
      }
    }
    out.rows.push(row);
    if (why) {
      out.stoppedBy = why;
      break;
    }
    out.maxRateP99Under100 = rate;
  }
  if (cpuRate && rates.includes(cpuRate) && !out.rows.some((r) => r.rate === cpuRate) && out.stoppedBy !== 'time budget') {
    log(`  ${cpuRate}/s once more for its CPU per connect only`);
    out.rows.push({ ...(await step(cpuRate)), cpuOnly: true });
  }
  return out;
}

/** Scenario 5: POST /login at a fixed arrival rate while the background socket load runs; socket ack p99 before and during. */
export async function logins(ctx, node, { rate, ms, drainMs, pool, password, bgRate, log }) {
  const before = await runLoad(ctx.gens, { rate: bgRate, ms, drainMs: 2_000 });
  const hist = newHist();
  const statuses = {};
  let okCount = 0;
  const during = await runLoad(ctx.gens, {
    rate: bgRate,
    drainMs: 2_000,
    during: async () => {
      const start = performance.now();
      const total = Math.round((rate * ms) / 1000);
      const inflight = [];
      for (let i = 0; i < total; i++) {
        const sched = start + (i * 1000) / rate;
        const wait = sched - performance.now();
        if (wait > 0) await sleep(wait);
        inflight.push(
          login(node, pool[i % pool.length], password, Math.round(Math.max(1_000, sched + ms + drainMs - performance.now()))).then((status) => {
            statuses[status] = (statuses[status] ?? 0) + 1;
            if (status === 200) {
              okCount++;
              recordMs(hist, performance.now() - sched);
            }
          }),
        );
      }
      await Promise.all(inflight);
      return { seconds: (performance.now() - start) / 1000 };
    },
  });
  const r = {
    offeredPerSec: rate,
    achievedPerSec: Math.round((10 * okCount) / during.extra.seconds) / 10,
    login: summary(hist),
    statuses,
    socketAckBefore: before.ack,
    socketAckDuring: during.ack,
    bgRatePerSec: bgRate,
  };
  log(`  offered ${rate}/s: achieved ${r.achievedPerSec}/s, login p50 ${r.login.p50} p99 ${r.login.p99} ms, socket ack p99 ${before.ack.p99} → ${during.ack.p99} ms`);
  return r;
}

/**
 * Scenario 4: `streams` users (3 tabs each) each ask once; the upstream streams at
 * 50 tokens/s and records when it wrote each delta. For every upstream delta, the
 * tab's delivery is the first chat:delta whose cumulative text covers it; the
 * added time is delivery − upstream write (coalescing included).
 */
export async function relay(ctx, { streams, upstream, pool, urls, connectRate, streamSeconds, startRate, log }) {
  const c = await connectUsers(ctx.gens, { users: pool.slice(0, streams), urls, set: 'chat', rate: connectRate });
  await sleep(500);
  const parts = ctx.gens.split(pool.slice(0, streams));
  // The streams start at `startRate` per second in all (open loop), so that the figures are those of
  // `streams` concurrent streams rather than of one instant at which every user pressed send.
  const spreadMs = startRate ? Math.round((1000 * streams) / startRate) : 0;
  const cpu0 = cpuByRole(ctx.measuredPid);
  const rs = await ctx.gens.all('chat', (g) => ({ count: parts[g].length, keyPrefix: `s${Date.now().toString(36)}`, timeoutMs: streamSeconds * 1000 + spreadMs + 30_000, spreadMs }));
  const spent = cpuSpent(cpu0, cpuByRole(ctx.measuredPid));
  const up = await upstream.dump();
  let upstreamDeltas = 0;
  const first = [];
  const starts = [];
  const added = [];
  const gapAdded = [];
  const tabGaps = [];
  const upGaps = [];
  let streamsOk = 0;
  let incomplete = 0;
  let frames = 0;
  const acks = {};
  for (const r of rs) {
    for (const [key, st] of Object.entries(r.streams)) {
      acks[st.ack] = (acks[st.ack] ?? 0) + 1;
      const w = up[key]?.writes;
      if (!w || w.length === 0) continue;
      streamsOk++;
      starts.push(up[key].arrivedAt - st.sendAt);
      upstreamDeltas += w.length / 2;
      for (const arr of st.tabs) {
        frames += arr.length / 2;
        let j = 0;
        let prevDeliver = null;
        let prevWrite = null;
        for (let i = 0; i < w.length; i += 2) {
          const at = w[i];
          const cum = w[i + 1];
          while (j < arr.length && arr[j + 1] < cum) j += 2;
          if (j >= arr.length) {
            incomplete++;
            break;
          }
          const deliver = arr[j];
          const a = deliver - at;
          added.push(a);
          if (i === 0) first.push(a);
          if (prevDeliver !== null) {
            tabGaps.push(deliver - prevDeliver);
            upGaps.push(at - prevWrite);
            gapAdded.push(deliver - prevDeliver - (at - prevWrite));
          }
          prevDeliver = deliver;
          prevWrite = at;
        }
      }
    }
  }
  const r2 = (v) => (v === null ? null : Math.round(v * 100) / 100);
  const out = {
    streams, connectFailed: c.failed, streamsMeasured: streamsOk, acks, incompleteTabs: incomplete,
    firstDeltaAddedMs: { p50: r2(pct(first, 50)), p99: r2(pct(first, 99)), max: r2(pct(first, 100)) },
    // Sam's start: from the tab's chat:send to the request's arrival upstream (bare sends the request at once)
    sendToUpstreamMs: { p50: r2(pct(starts, 50)), p99: r2(pct(starts, 99)) },
    deltaAddedMs: { p50: r2(pct(added, 50)), p99: r2(pct(added, 99)), p999: r2(pct(added, 99.9)) },
    interDeltaAddedMs: { p50: r2(pct(gapAdded, 50)), p99: r2(pct(gapAdded, 99)) },
    tabInterDeltaMs: { p50: r2(pct(tabGaps, 50)), p99: r2(pct(tabGaps, 99)) },
    upstreamInterDeltaMs: { p50: r2(pct(upGaps, 50)), p99: r2(pct(upGaps, 99)) },
    samples: added.length,
    upstreamDeltas,
    // how often the server sends each tab a chat:delta: its coalescing, which the CPU per delta depends on
    framesPerTabPer100Deltas: added.length ? Math.round((10_000 * frames) / added.length) / 100 : null,
    // per upstream delta, from the first send to the last tab's `chat:done` (the upstream counts as the bench's)
    cpu: perUnit(spent, upstreamDeltas),
  };
  const per = out.cpu.msPer;
  log(`  ${streamsOk}/${streams} streams: added to first delta p50 ${out.firstDeltaAddedMs.p50} p99 ${out.firstDeltaAddedMs.p99} ms; send to upstream request p50 ${out.sendToUpstreamMs.p50} p99 ${out.sendToUpstreamMs.p99} ms; per delta p99 ${out.deltaAddedMs.p99} ms; inter-delta added p99 ${out.interDeltaAddedMs.p99} ms; CPU ms per upstream delta: server ${per.server}, PostgreSQL ${per.postgres}, Redis ${per.redis}, generators ${per.generators}`);
  await ctx.gens.all('disconnect', () => ({ sets: ['chat'] }));
  return out;
}

/**
 * 8. CPU per connect, per task update and per relayed delta in paired rounds. The phases of each server run
 * minutes apart, and this machine's speed drifts over that time (the same code's ratios moved by a third between
 * runs), so here a fresh Sam node and a fresh bare node, both warmed, do the same fixed-rate work in alternate
 * rounds, in the order Sam, bare, bare, Sam, Sam, bare…: each pair of rounds shares the machine's state of the
 * moment. A round counts the CPU of its node, PostgreSQL and Redis (the idle node counts as other). The report
 * shows the median of the pairs' ratios, with their range, beside the phases' ratios.
 *
 * For updates each node has its own users' tabs (3 each), connected for those rounds only: a round is `ms` of
 * `task:update` at `rate` from that node's users (a whole ping interval, as phase 3's window of record).
 */
export async function pairedCpu(ctx, { nodes, rounds, hs, updates, relay: relayArgs, settleMaxMs, log }) {
  // Each runs one round on the node of `kind` ('sam' or 'bare'), counting only that node as the server.
  const connects = async (c, kind) => {
    const { connected, spent } = await connectRound(c, { rate: hs.rate, ms: hs.ms, pool: hs.pool, urls: [nodes[kind].url] });
    return { connect: connected.connect, failed: connected.failed, cpu: perUnit(spent, connected.ok) };
  };
  const streams = (c, kind) => relay(c, { ...relayArgs, urls: [nodes[kind].url], log: () => undefined });
  const updateRound = async (c, kind) => {
    const { r, spent } = await loadRound(c, { rate: updates.rate, ms: updates.ms, drainMs: updates.drainMs, sets: [`paired-${kind}`] });
    return { delivery: r.delivery, lost: r.lost, unacked: r.unacked, cpu: perUnit(spent, r.acked) };
  };
  const connectTabs = async () => {
    for (const kind of ['sam', 'bare']) {
      const c = await connectUsers(ctx.gens, { users: updates.users[kind], urls: [nodes[kind].url], set: `paired-${kind}`, rate: updates.connectRate });
      log(`  ${kind}: ${c.ok} tabs connected for the update rounds${c.failed ? `, ${c.failed} failed` : ''}`);
    }
  };
  // A fresh node's connects cost it more for thousands of them (its code and heap settle), so each node first
  // runs whole unmeasured rounds of them (`hs.warmRounds`); the relay's warm-up is the phase's (the caller's).
  const kinds = [
    { what: 'handshakes', unit: 'connect', run: connects, wanted: Boolean(hs), warmRounds: hs?.warmRounds ?? 0 },
    {
      what: 'updates',
      unit: 'update',
      run: updateRound,
      wanted: Boolean(updates),
      warmRounds: updates?.warmRounds ?? 0,
      before: connectTabs,
      after: () => ctx.gens.all('disconnect', () => ({ sets: ['paired-sam', 'paired-bare'] })),
    },
    { what: 'relay', unit: 'upstream delta', run: streams, wanted: Boolean(relayArgs), warmRounds: 0 },
  ];
  const out = { rounds };
  for (const { what, unit, run, wanted, warmRounds, before, after } of kinds) {
    if (!wanted) continue;
    await before?.();
    for (const kind of ['sam', 'bare']) {
      for (let i = 0; i < warmRounds; i++) await run({ ...ctx, measuredPid: nodes[kind].child.pid }, kind);
    }
    log(`  ${what}: ${warmRounds ? `${warmRounds} unmeasured rounds on each node, then ` : ''}${rounds} pairs of rounds`);
    out[what] = [];
    for (let i = 0; i < rounds; i++) {
      const pair = {};
      for (const kind of i % 2 === 0 ? ['sam', 'bare'] : ['bare', 'sam']) {
        await settle({ maxMs: settleMaxMs });
        const r = await run({ ...ctx, measuredPid: nodes[kind].child.pid }, kind);
        const per = r.cpu.msPer;
        log(`  ${kind}: CPU ms per ${unit}: server ${per.server}, PostgreSQL ${per.postgres}, Redis ${per.redis}`);
        pair[kind] = r;
      }
      out[what].push(pair);
    }
    await after?.();
  }
  return out;
}
