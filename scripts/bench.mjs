// `npm run bench` (full, < 17 min) and `npm run bench -- --quick` (< 2.5 min).
// Builds the server, starts Sam in production mode, the bare Socket.IO baseline
// and the load generators as separate processes, runs the scenarios of
// bench/README.md, writes bench/results/<date>.json (git-ignored) and prints
// Sam | bare | ratio | target, the verdicts, the retried steps and, for a run of
// the same mode, the ratios against bench/baseline.json.
// Options: --quick, --profile (Sam under --cpu-prof, top self-time printed),
// --sam-only, --bare-only, --no-build, --only <scenarios>, --steps <sockets,...>, --set key=n,...
// Never fails because a target is missed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { capacity, collectGarbage, connectUsers, fanout, Generators, handshakes, logins, memoryBaseline, pairedCpu, reconnectStorm, relay, reminders, Retries, runLoad, twoNodeCapacity, warmConnects, warmLogins } from '../bench/scenarios.mjs';
import { cleanup, countPostgresFor, killAll, logDir, migrate, portBelowEphemeralRange, profilesWritten, reminderStats, restartNode, root, runIdentity, seedUsers, sharedPasswordHash, startBare, startSam, startUpstream, stopNode } from '../bench/servers.mjs';
import { renderReport, TWO_NODE_TARGET_SOCKETS } from '../bench/report.mjs';
import { byWindow, topSelf } from '../bench/profile-top.mjs';
import { settle, sleep } from '../bench/lib.mjs';
import { searchPhase, searchReport } from '../bench/search.mjs';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const profile = argv.includes('--profile');
const runSam = !argv.includes('--bare-only');
let runBare = !argv.includes('--sam-only');
const optionValue = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
// --only capacity,fanout,logins,storm,handshakes,relay,two,reminders,search: run just these phases (to reproduce
// one figure or profile one scenario). Fan-out, logins and the storm need the capacity phase's sockets, so
// it runs whenever one of them is asked for. --steps 9000 sets the capacity steps (default: the mode's).
// Reminders and search are Sam's only: bare has neither, so a run of them alone starts no bare server. Search
// runs last, on a node and users of its own.
const scenarioNames = ['capacity', 'fanout', 'logins', 'storm', 'handshakes', 'relay', 'two', 'reminders', 'search'];
const only = optionValue('--only')?.split(',');
if (only?.some((o) => !scenarioNames.includes(o))) {
  console.error(`--only takes a comma-separated list of: ${scenarioNames.join(', ')}`);
  process.exit(64);
}
const wanted = (name) => !only || only.includes(name) || (name === 'capacity' && ['fanout', 'logins', 'storm'].some((o) => only.includes(o)));
/** the phases over the main node's sockets (all but search, which has a node and users of its own) */
const socketPhases = scenarioNames.filter((n) => n !== 'search').some(wanted);
if (!scenarioNames.filter((n) => n !== 'search' && n !== 'reminders').some(wanted)) runBare = false;

// cpuRate: the fixed rate at which CPU per connect and per update are set against bare's (both ramps include it).
// warm*: the unmeasured warm-up before each phase (sockets connected, its length, relay streams).
// retryBudgetMs: how long each server's retries of failed steps may take in all (the same for Sam and bare).
// settleMaxMs: how long a phase waits at most for a quiet machine (shorter in quick runs, which must stay short).
// pairedRounds: the pairs of rounds (Sam and bare alternating) of CPU per connect, per update and per relayed delta
// (quick: none).
// search: the search phase's data (one user's conversations × messages and tasks; `users` more users with a little each)
// and its loads (searches per second for ms; `common`: the 20 commonest words).
const searchCfg = quick
  ? { sizes: { heavy: { conversations: 250, perConversation: 40, tasks: 2_000 }, users: 100, light: { conversations: 5, perConversation: 20, tasks: 20 } }, loads: { typical: { rate: 20, ms: 5_000, seed: 1 }, common: { rate: 10, ms: 3_000, seed: 2 } } }
  : { sizes: { heavy: { conversations: 2_500, perConversation: 40, tasks: 20_000 }, users: 1_000, light: { conversations: 5, perConversation: 20, tasks: 20 } }, loads: { typical: { rate: 20, ms: 30_000, seed: 1 }, common: { rate: 10, ms: 10_000, seed: 2 } } };
// reminder*: phase 7's reminders, due evenly over reminderSpreadMs, set at reminderSetRate/s over reminderUsers
// users (3 tabs each, over both nodes) before the window, which opens reminderLeadMs after setting should end;
// a tab that has not received one reminderLostMs after its time lost it; the count stays open reminderQuietMs
// after the last receipt (in full runs longer than the 15 s firing lease, after which a second node could fire it).
const cfg = quick
  ? { steps: [1500], windowMs: 2_500, connectRate: 1_500, fanoutRates: [500, 1000], fanoutMs: 2_500, drainMs: 1_500, hsRates: [500, 1000], hsMs: 1_500, streams: 50, streamSeconds: 2, streamStartRate: 100, loginRate: 60, loginMs: 2_000, twoNodeRates: [1000], twoNodeCapacity: false, twoNodeBudgetMs: 15_000, budgetMs: 40_000, cpuRate: 1000, cpuWindowMs: 0, warmSockets: 300, warmMs: 500, warmStreams: 10, retryBudgetMs: 6_000, settleMaxMs: 3_000, reminders: 1_000, reminderUsers: 200, reminderSpreadMs: 10_000, reminderSetRate: 500, reminderLeadMs: 3_000, reminderLostMs: 30_000, reminderQuietMs: 3_000, warmReminders: 50, pairedRounds: 0 }
  : { steps: [3000, 6000, 9000, 12000, 15000, 18000, 19500], windowMs: 10_000, connectRate: 1_500, fanoutRates: [250, 500, 1000, 1250, 1500, 1750, 2000, 2500, 3000], fanoutMs: 5_000, drainMs: 3_000, hsRates: [250, 500, 1000, 1250, 1500, 1750, 2000, 2500, 3000], hsMs: 4_000, streams: 200, streamSeconds: 10, streamStartRate: 100, loginRate: 60, loginMs: 10_000, twoNodeRates: [500, 1000, 2000], twoNodeCapacity: true, twoNodeBudgetMs: 60_000, budgetMs: 330_000, cpuRate: 1000, cpuWindowMs: 25_000, warmSockets: 600, warmMs: 2_000, warmStreams: 20, retryBudgetMs: 75_000, settleMaxMs: 20_000, reminders: 10_000, reminderUsers: 2_000, reminderSpreadMs: 60_000, reminderSetRate: 500, reminderLeadMs: 10_000, reminderLostMs: 30_000, reminderQuietMs: 17_000, warmReminders: 200, pairedRounds: 3 };
// Fan-out and handshake rates step by 250/s where their ratio targets (≥ 0.8× and ≥ 0.85× bare) are decided:
// with coarser steps a server just short of the next step counts as the one below, far under its real ratio.
// 19,500: a server process may hold at most `ulimit -n` descriptors (a hard limit of 20,000 where the bench runs).
if (optionValue('--steps')) cfg.steps = optionValue('--steps').split(',').map(Number);
// --set streams=20,streamStartRate=10,fanoutRates=250/1000: override numeric settings of the mode (the keys
// of cfg above); a list setting takes its numbers separated by '/'.
for (const pair of optionValue('--set')?.split(',') ?? []) {
  const [key, value = ''] = pair.split('=');
  const list = Array.isArray(cfg[key]);
  const numbers = value.split('/').map(Number);
  if (!(key in cfg) || typeof cfg[key] === 'boolean' || numbers.some((n) => !Number.isFinite(n)) || (!list && numbers.length > 1)) {
    console.error(`--set takes key=number (or key=n/n/n for a list) pairs of: ${Object.keys(cfg).filter((k) => typeof cfg[k] !== 'boolean').join(', ')}`);
    process.exit(64);
  }
  cfg[key] = list ? numbers : numbers[0];
}

const started = Date.now();
const log = (s) => process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${s}\n`);
const ident = runIdentity();
const basePort = portBelowEphemeralRange();
let gens;
const loadAverages = [];
/**
 * Sam's phases as windows on CLOCK_MONOTONIC (µs), the clock of `process.hrtime`
 * and of V8's CPU profiles, so that `--profile` can say what Sam's main thread
 * did in each scenario (`byWindow`).
 */
const phaseWindows = [];
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);
let cleaned = false;

async function finish(code) {
  if (cleaned) return;
  cleaned = true;
  gens?.stop();
  killAll('SIGTERM');
  await sleep(1_500);
  killAll('SIGKILL');
  const c = await cleanup(ident, [ident.redisPrefix, `bare-${ident.id}:`]);
  log(`cleanup: database ${c.database}, Redis keys deleted ${c.redisKeysDeleted ?? c.redis}`);
  process.exit(code);
}
process.on('SIGINT', () => void finish(130));
process.on('SIGTERM', () => void finish(143));
process.on('uncaughtException', (err) => {
  console.error(err);
  void finish(1);
});
// A hard stop against a hung run, well above the usual length (quick < 2.5 min; full 15-17 min on a quiet fast
// machine, about 21 on a slow one, which a 20 min stop cut off before its report).
setTimeout(() => {
  log('hard time limit reached: stopping');
  void finish(2);
}, quick ? 240_000 : 2_100_000).unref();

async function main() {
  log(`bench ${quick ? '--quick' : 'full'}: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; generators share the CPU with the server (see bench/README.md)`);
  if (!argv.includes('--no-build')) {
    log('building the server (npm run build:server)');
    const b = spawnSync('npm', ['run', 'build:server'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
    if (b.status !== 0) throw new Error('build failed');
  }
  log(`database ${ident.dbName}, Redis prefix ${ident.redisPrefix}, logs in ${logDir}`);
  await migrate(ident);
  countPostgresFor(ident.dbName);
  const upstream = await startUpstream(cfg.streamSeconds * 50 * 4);
  gens = new Generators(3, { nice: argv.includes('--nice-generators') ? 10 : 0 });
  await gens.start();

  const maxSockets = Math.max(...cfg.steps);
  const results = { date: new Date().toISOString(), mode: quick ? 'quick' : 'full', machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, fdLimit: fdLimit() }, config: { ...cfg, only, niceGenerators: argv.includes('--nice-generators') }, sam: null, bare: null };

  let pool;
  let chatPool;
  if (runSam && socketPhases) {
    const opts = { upstreamUrl: upstream.url, profile };
    let a = await startSam(ident, { port: basePort, nodeId: 'sam-a', ...opts });
    const hash = await sharedPasswordHash(ident, a.url);
    const nUsers = Math.ceil((2 * maxSockets) / 3) + cfg.streams;
    const t = Date.now();
    const all = await seedUsers(ident, nUsers, hash);
    log(`seeded ${all.length} users with sessions, tasks and minted tokens in ${Date.now() - t} ms`);
    pool = all.slice(0, nUsers - cfg.streams);
    chatPool = all.slice(nUsers - cfg.streams);
    let sam;
    ({ result: sam, node: a } = await runAll('sam', [a], async (n, signal) => restartNode(n, opts, signal), async () => startSam(ident, { port: basePort + 1, nodeId: 'sam-b', ...opts }), { pool, chatPool, upstream, password: ident.password }));
    results.sam = sam;
    await Promise.all([stopNode(a)]);
    if (profile) {
      await sleep(500);
      const files = profilesWritten.filter((f) => fs.existsSync(f));
      results.sam.profiles = files.map((f) => topSelf(f, 20));
      // Each phase's window of each process's profile: what the main thread did during that scenario.
      results.sam.profilePhases = files.flatMap((f) => byWindow(f, phaseWindows));
    }
  }
  if (runBare) {
    if (!pool) {
      // Bare alone still needs user ids and (unverified) tokens.
      const a = await startSam(ident, { port: basePort, nodeId: 'sam-seed', upstreamUrl: upstream.url });
      const hash = await sharedPasswordHash(ident, a.url);
      const all = await seedUsers(ident, Math.ceil((2 * maxSockets) / 3) + cfg.streams, hash);
      await stopNode(a);
      pool = all.slice(0, all.length - cfg.streams);
      chatPool = all.slice(all.length - cfg.streams);
    }
    const bareOpts = { upstreamUrl: upstream.url };
    const a = await startBare({ port: basePort + 2, nodeId: 'bare-a', ...bareOpts });
    const { result } = await runAll(
      'bare',
      [a],
      async (n, signal) => restartNode(n, bareOpts, signal),
      async () => null,
      // The phases after capacity run at Sam's socket count, when Sam ran: a server's CPU at rest (its tabs' pings)
      // grows with its sockets, and the per-operation ratios compare the two at the same load.
      { pool, chatPool, upstream, password: null, keepAtMost: results.sam?.capacity?.largestOkStep || undefined, twoNodes: async () => [await startBare({ port: basePort + 3, nodeId: 'bare-r1', ...bareOpts, redisPrefix: `bare-${ident.id}:` }), await startBare({ port: basePort + 4, nodeId: 'bare-r2', ...bareOpts, redisPrefix: `bare-${ident.id}:` })] },
    );
    results.bare = result;
  }

  if (runSam && runBare && cfg.pairedRounds > 0 && (wanted('handshakes') || wanted('fanout') || wanted('relay'))) {
    results.paired = await pairedStage(upstream, { pool, chatPool });
  }

  if (runSam && wanted('search')) {
    log(`sam: search: one user with ${searchCfg.sizes.heavy.conversations * searchCfg.sizes.heavy.perConversation} messages and ${searchCfg.sizes.heavy.tasks} tasks, ${searchCfg.sizes.users} users with a little each`);
    results.search = await searchPhase(ident, { port: basePort + 5, upstreamUrl: upstream.url, ...searchCfg, settleMaxMs: cfg.settleMaxMs, log });
  }

  results.loadAverages = loadAverages;
  results.elapsedSeconds = Math.round((Date.now() - started) / 1000);
  const baseline = readBaseline();
  const report = renderReport(results, baseline);
  results.targets = report.targets;
  if (report.comparison) results.againstBaseline = report.comparison;
  const dir = path.join(root, 'bench/results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${results.date.replace(/[:]/g, '-').replace(/\..+$/, '')}${quick ? '-quick' : ''}${only ? `-only-${only.join('-')}` : ''}.json`);
  fs.writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  const searchLines = results.search ? searchReport(results.search, results.machine).join('\n') : '';
  const markdown = !socketPhases ? searchLines : results.search ? `${report.markdown}\n\n${searchLines}` : report.markdown;
  process.stdout.write(`\n${markdown}\n`);
  log(`results written to ${path.relative(root, file)}`);
}

/**
 * 8. CPU per connect, per update and per relayed delta, Sam and bare in alternate rounds (`pairedCpu`): a fresh
 * node of each, both up throughout, each warmed; the same ratios as phases 2a, 3 and 4, with the machine's drift
 * shared. The update rounds' users are the pool's last, 1,000 a node (fewer in a run of fewer users); every
 * earlier phase's tabs are closed by then.
 */
async function pairedStage(upstream, { pool, chatPool }) {
  const updateUsers = Math.min(1_000, Math.floor(pool.length / 2));
  const sam = await startSam(ident, { port: basePort + 6, nodeId: 'sam-paired', upstreamUrl: upstream.url });
  const bare = await startBare({ port: basePort + 7, nodeId: 'bare-paired', upstreamUrl: upstream.url });
  const relayArgs = relayArgsOf(upstream, chatPool);
  if (wanted('relay')) {
    for (const node of [sam, bare]) {
      const r = await relay({ gens }, { ...relayArgs, urls: [node.url], streams: cfg.warmStreams, log: () => undefined });
      log(`${node.kind}: warm-up for 8.'s relay (unmeasured): ${r.streamsMeasured} streams`);
    }
  }
  log(`8. CPU per operation in paired rounds: Sam and bare alternate (load average ${Math.round(os.loadavg()[0] * 100) / 100})`);
  try {
    return await pairedCpu(
      { gens },
      {
        nodes: { sam, bare },
        rounds: cfg.pairedRounds,
        hs: wanted('handshakes') ? { rate: cfg.cpuRate, ms: cfg.hsMs, pool, warmRounds: 2 } : null,
        updates: wanted('fanout')
          ? {
              rate: cfg.cpuRate,
              ms: cfg.cpuWindowMs || cfg.fanoutMs,
              drainMs: cfg.drainMs,
              connectRate: cfg.connectRate,
              users: { sam: pool.slice(-2 * updateUsers, -updateUsers), bare: pool.slice(-updateUsers) },
              warmRounds: 1,
            }
          : null,
        relay: wanted('relay') ? { ...relayArgs, streams: cfg.streams } : null,
        settleMaxMs: Math.min(10_000, cfg.settleMaxMs),
        log,
      },
    );
  } finally {
    await Promise.all([stopNode(sam), stopNode(bare)]);
  }
}

/** Phase 4's streams, as phase 8 runs them too: the chat users, the upstream, how the streams start and last. */
function relayArgsOf(upstream, chatPool) {
  return { upstream, pool: chatPool, connectRate: cfg.connectRate, streamSeconds: cfg.streamSeconds, startRate: cfg.streamStartRate };
}

/** bench/baseline.json: the committed full run that a run of the same mode is compared with (null if absent or unreadable). */
function readBaseline() {
  try {
    return { file: 'bench/baseline.json', data: JSON.parse(fs.readFileSync(path.join(root, 'bench/baseline.json'), 'utf8')) };
  } catch {
    return null;
  }
}

function fdLimit() {
  const r = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' });
  return r.stdout.trim();
}

/**
 * Runs every scenario against one kind of server. `nodes[0]` is the first node;
 * `restart(node)` restarts it; `secondNode()` starts a second Sam node (same
 * database and Redis). Bare gives `twoNodes()` instead: two bare nodes with the Redis adapter.
 */
async function runAll(kind, nodes, restart, secondNode, { pool, chatPool, upstream, password, twoNodes, keepAtMost }) {
  let a = nodes[0];
  const out = {};
  const warmUps = [];
  const retries = new Retries(cfg.retryBudgetMs, log);
  const ctx = { gens, retries };
  /**
   * Runs one scenario: first its `warm` step, if any (a little of the phase's own work, unmeasured, so that the
   * figures are those of a warm process: a fresh one compiles and sizes its heap in its first window); then
   * collects garbage in the generators and on the nodes it measures (by default the current one), waits for a
   * quiet machine, logs it, and records its window for `--profile`. The scenarios run one after another in the
   * same processes; without the collection, a major GC owed to the one before (the storm's closed sockets, the
   * handshakes' thousands) could land in the next one's window.
   */
  const phase = async (s, run, { collectOn = [a], warm } = {}) => {
    if (warm) {
      const t0 = Date.now();
      const what = await warm();
      warmUps.push({ phase: `${kind} ${s.split(' ')[0]}`, what, ms: Date.now() - t0 });
      log(`${kind}: warm-up for ${s.split(' ')[0]} (unmeasured): ${what} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
    await collectGarbage(gens, collectOn);
    const quiet = await settle({ maxMs: cfg.settleMaxMs });
    const load1 = Math.round(os.loadavg()[0] * 100) / 100;
    loadAverages.push({ phase: `${kind} ${s.split(' ')[0]}`, load1, settledMs: quiet.waitedMs, busyAtStart: quiet.busy });
    log(`${kind}: ${s} (load average ${load1}; waited ${(quiet.waitedMs / 1000).toFixed(1)} s for the machine to be quiet, busy ${Math.round(quiet.busy * 100)}%)`);
    const fromUs = monotonicUs();
    try {
      return await run();
    } finally {
      if (kind === 'sam') phaseWindows.push({ label: s, fromUs, toUs: monotonicUs() });
    }
  };
  const budgetEndsAt = Date.now() + cfg.budgetMs;

  // The warm-up's users are the first of the pool; they are disconnected again before the phase connects its own.
  const warmUsers = pool.slice(0, Math.ceil(cfg.warmSockets / 3));
  let n = 0;
  if (wanted('capacity')) {
    // The memory baseline is the fresh process's, read before the warm-up (which leaves its own state behind).
    let base;
    out.capacity = await phase(
      '1. capacity and memory (3 sockets per user, one task update per user every 10 s)',
      () => capacity(ctx, [a], { steps: cfg.steps, windowMs: cfg.windowMs, connectRate: cfg.connectRate, pool, urls: [a.url], budgetEndsAt: budgetEndsAt - cfg.budgetMs / 3, log, base, keepAtMost }),
      {
        warm: async () => {
          base = await memoryBaseline(gens, [a]);
          return warmConnects(gens, { users: warmUsers, urls: [a.url], rate: cfg.connectRate, loadRate: 100, loadMs: cfg.warmMs });
        },
      },
    );
    n = out.capacity.remaining;
    out.fanoutSockets = n;
  }

  if (wanted('fanout')) {
    out.fanout = await phase(`3. fan-out at ${n} sockets`, () => fanout(ctx, { rates: cfg.fanoutRates, ms: cfg.fanoutMs, drainMs: cfg.drainMs, budgetEndsAt, log, cpuRate: cfg.cpuRate, cpuWindowMs: cfg.cpuWindowMs }), {
      warm: async () => {
        const r = await runLoad(gens, { rate: cfg.fanoutRates[0], ms: cfg.warmMs, drainMs: 1_000 });
        return `${r.acked} updates at ${cfg.fanoutRates[0]}/s`;
      },
    });
  }

  if (password && wanted('logins')) {
    out.logins = await phase(
      `5. logins at ${cfg.loginRate}/s with ${n} sockets under background load`,
      () => logins(ctx, a, { rate: cfg.loginRate, ms: cfg.loginMs, drainMs: quick ? 3_000 : 10_000, pool, password, bgRate: Math.max(1, Math.round(n / 30)), log }),
      { warm: () => warmLogins(a, { pool, password, count: 10, rate: 20 }) },
    );
  }

  if (wanted('storm')) {
    // Full runs restart gracefully (SIGTERM, as a deploy does); quick runs crash-restart (SIGKILL) to stay short,
    // unless profiled: a killed process writes no profile. No warm-up: what it measures is a fresh process.
    const restartKind = quick && !profile ? 'SIGKILL' : 'SIGTERM';
    const storm = await phase(`2b. reconnect storm: restart (${restartKind}) with ${n} sockets`, () =>
      reconnectStorm(ctx, a, { restart: () => restart(a, restartKind), timeoutMs: quick ? 20_000 : 60_000, log }),
    );
    storm.result.restartKind = restartKind;
    a = storm.node;
    out.reconnect = storm.result;
  }
  await gens.all('disconnect', () => ({}));
  await sleep(1_500);

  if (wanted('handshakes')) {
    out.handshakes = await phase('2a. handshakes at fixed arrival rates', () => handshakes(ctx, { rates: cfg.hsRates, ms: cfg.hsMs, pool, urls: [a.url], budgetEndsAt: Infinity, log, cpuRate: cfg.cpuRate, settleMaxMs: Math.min(10_000, cfg.settleMaxMs) }), {
      warm: () => warmConnects(gens, { users: warmUsers, urls: [a.url], rate: cfg.hsRates[0] }),
    });
  }

  if (wanted('relay')) {
    const relayArgs = { ...relayArgsOf(upstream, chatPool), urls: [a.url] };
    out.relay = await phase(`4. assistant relay: ${cfg.streams} streams at 50 tokens/s, 3 tabs each, starting at ${cfg.streamStartRate}/s`, () => relay(ctx, { ...relayArgs, streams: cfg.streams, log }), {
      warm: async () => {
        const r = await relay(ctx, { ...relayArgs, streams: cfg.warmStreams, log: (m) => log(`  warm-up:${m}`) });
        return `${r.streamsMeasured} streams`;
      },
    });
  }

  out.warmUps = warmUps;
  out.retries = retries.list;
  // Bare has no reminders: for it, phase 6 is the last.
  const remindersToo = kind === 'sam' && wanted('reminders');
  if (!wanted('two') && !remindersToo) return { result: out, node: a };
  let pair;
  if (twoNodes) {
    await stopNode(a);
    pair = await twoNodes();
  } else {
    pair = [a, await secondNode()];
  }
  if (wanted('two')) {
    const fanoutUsers = Math.floor((n || Math.max(...cfg.steps)) / 3);
    out.twoNodes = {};
    let connected;
    await phase(
      `6. two nodes with the Redis adapter: fan-out at ${fanoutUsers * 3} sockets, tabs spread over both nodes`,
      async () => {
        // A budget of its own, from here: a server whose earlier phases ran long (their retries) still gets this
        // phase's rates, as the other server does, and the run keeps its length.
        const ends = Date.now() + cfg.twoNodeBudgetMs;
        out.twoNodes.fanout = await fanout(ctx, { rates: cfg.twoNodeRates, ms: cfg.fanoutMs, drainMs: cfg.drainMs, budgetEndsAt: ends, log, cpuRate: cfg.cpuRate, readRest: false, phase: '6. two-node fan-out' });
      },
      {
        collectOn: pair,
        // Connecting is not measured here, so it is part of the warm-up, with a little load: one node is fresh.
        warm: async () => {
          connected = await connectUsers(gens, { users: pool.slice(0, fanoutUsers), urls: pair.map((p) => p.url), set: 'two', rate: cfg.connectRate });
          out.twoNodes.connectFailed = connected.failed;
          out.twoNodes.fanoutSockets = connected.ok;
          await runLoad(gens, { rate: 100, ms: cfg.warmMs, drainMs: 1_000 });
          return `${connected.ok} sockets connected over both nodes, 100 updates/s for ${cfg.warmMs / 1000} s`;
        },
      },
    );
    if (cfg.twoNodeCapacity) {
      // The issue's figure first, then twice the one-node fan-out when that is more; the largest that holds counts.
      const userSteps = [...new Set([Math.min(TWO_NODE_TARGET_SOCKETS / 3, 2 * fanoutUsers), 2 * fanoutUsers])];
      out.twoNodes.capacityCheck = await twoNodeCapacity(ctx, pair, {
        userSteps, connectedUsers: fanoutUsers, connectedSockets: connected.ok, pool, connectRate: cfg.connectRate, windowMs: cfg.windowMs,
        // Not before connecting: each step collects garbage itself once its sockets are connected.
        phase: (sockets, run) => phase(`6. two nodes: capacity check at ${sockets} sockets`, run, { collectOn: [] }), log,
      });
    }
    await gens.all('disconnect', () => ({}));
  }

  if (remindersToo) {
    // Phase 7 on the same two nodes: users' tabs over both, reminders set through the socket API, every receipt counted.
    const users = pool.slice(0, cfg.reminderUsers);
    const common = { sets: ['rem'], setRate: cfg.reminderSetRate, lostAfterMs: cfg.reminderLostMs, log };
    let connected;
    out.reminders = await phase(
      `7. reminders: ${cfg.reminders} due within ${cfg.reminderSpreadMs / 1000} s on two nodes, ${users.length * 3} tabs (3 per user) over both`,
      async () => ({
        users: users.length,
        sockets: connected.ok,
        connectFailed: connected.failed,
        ...(await reminders(ctx, { ...common, count: cfg.reminders, spreadMs: cfg.reminderSpreadMs, leadMs: cfg.reminderLeadMs, quietMs: cfg.reminderQuietMs, dbStats: (from, to) => reminderStats(ident, from, to) })),
      }),
      {
        collectOn: pair,
        // Connecting is not measured, nor are the few reminders fired first: each node's claim path warms up.
        warm: async () => {
          connected = await connectUsers(gens, { users, urls: pair.map((p) => p.url), set: 'rem', rate: cfg.connectRate });
          const w = await reminders(ctx, { ...common, count: cfg.warmReminders, spreadMs: 1_000, leadMs: 1_000, quietMs: 500, quiet: true });
          return `${connected.ok} sockets connected over both nodes${connected.failed ? ` (${connected.failed} failed)` : ''}, ${w.fired} reminders fired (lag p99 ${w.lagMs.p99} ms)`;
        },
      },
    );
    await gens.all('disconnect', () => ({}));
  }
  for (const p of pair) if (p !== a || twoNodes) await stopNode(p);
  return { result: out, node: a };
}

main()
  .then(() => finish(0))
  .catch((err) => {
    console.error(err);
    void finish(1);
  });
