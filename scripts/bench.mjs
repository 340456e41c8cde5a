// `npm run bench` (full, < 15 min) and `npm run bench -- --quick` (< 2 min).
// Builds the server, starts Sam in production mode, the bare Socket.IO baseline
// and the load generators as separate processes, runs the scenarios of
// bench/README.md, writes bench/results/<date>.json and prints Sam | bare | ratio.
// Options: --quick, --profile (Sam under --cpu-prof, top self-time printed),
// --sam-only, --bare-only, --no-build, --only <scenarios>, --steps <sockets,...>, --set key=n,...
// Never fails because a target is missed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { capacity, collectGarbage, connectUsers, fanout, Generators, handshakes, logins, reconnectStorm, relay, runLoad, twoNodeCapacity } from '../bench/scenarios.mjs';
import { cleanup, killAll, logDir, migrate, profilesWritten, restartNode, root, runIdentity, seedUsers, sharedPasswordHash, startBare, startSam, startUpstream, stopNode } from '../bench/servers.mjs';
import { renderReport, TWO_NODE_TARGET_SOCKETS } from '../bench/report.mjs';
import { byWindow, topSelf } from '../bench/profile-top.mjs';
import { settle, sleep } from '../bench/lib.mjs';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const profile = argv.includes('--profile');
const runSam = !argv.includes('--bare-only');
const runBare = !argv.includes('--sam-only');
const optionValue = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
// --only capacity,fanout,logins,storm,handshakes,relay,two: run just these phases (to reproduce one
// figure or profile one scenario). Fan-out, logins and the storm need the capacity phase's sockets, so
// it runs whenever one of them is asked for. --steps 9000 sets the capacity steps (default: the mode's).
const scenarioNames = ['capacity', 'fanout', 'logins', 'storm', 'handshakes', 'relay', 'two'];
const only = optionValue('--only')?.split(',');
if (only?.some((o) => !scenarioNames.includes(o))) {
  console.error(`--only takes a comma-separated list of: ${scenarioNames.join(', ')}`);
  process.exit(64);
}
const wanted = (name) => !only || only.includes(name) || (name === 'capacity' && ['fanout', 'logins', 'storm'].some((o) => only.includes(o)));

const cfg = quick
  ? { steps: [1500], windowMs: 3_000, connectRate: 1_500, fanoutRates: [250, 500], fanoutMs: 2_500, drainMs: 1_500, hsRates: [500, 1000], hsMs: 1_500, streams: 50, streamSeconds: 2, streamStartRate: 100, loginRate: 60, loginMs: 3_000, twoNodeRates: [500], twoNodeCapacity: false, budgetMs: 40_000 }
  : { steps: [3000, 6000, 9000, 12000, 15000, 18000, 19500], windowMs: 10_000, connectRate: 1_500, fanoutRates: [250, 500, 1000, 1250, 1500, 1750, 2000, 2500, 3000], fanoutMs: 5_000, drainMs: 3_000, hsRates: [250, 500, 1000, 1250, 1500, 1750, 2000, 2500, 3000], hsMs: 4_000, streams: 200, streamSeconds: 10, streamStartRate: 100, loginRate: 60, loginMs: 10_000, twoNodeRates: [500, 1000, 2000], twoNodeCapacity: true, budgetMs: 330_000 };
// Fan-out rates step by 250/s from 1,000 to 2,000: the target is a ratio (≥ 0.8× bare's capacity), and with
// steps of a third (1,500 → 2,000) a server able to do 1,900/s would have counted as 1,500 (0.75× of 2,000).
// Handshake rates likewise (≥ 0.85× bare): with 1,000 → 1,500, a server a little short of 1,500/s counted as 0.67×.
// 19,500: a server process may hold at most `ulimit -n` (here 20,000, the hard limit) descriptors.
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
// The servers' ports lie below the range the kernel hands out to outgoing connections (the generators open
// tens of thousands): a port in it can be taken by one of them, and the server then fails to listen.
const ephemeralLow = (() => {
  try {
    return Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32_768;
  } catch {
    return 32_768;
  }
})();
const basePort = 10_000 + Math.floor(Math.random() * Math.max(1_000, ephemeralLow - 10_010));
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
// A hard stop, whatever happens: quick mode 2.5 min, full 16 min.
setTimeout(() => {
  log('hard time limit reached: stopping');
  void finish(2);
}, quick ? 150_000 : 960_000).unref();

async function main() {
  log(`bench ${quick ? '--quick' : 'full'}: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; generators share the CPU with the server (see bench/README.md)`);
  if (!argv.includes('--no-build')) {
    log('building the server (npm run build:server)');
    const b = spawnSync('npm', ['run', 'build:server'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
    if (b.status !== 0) throw new Error('build failed');
  }
  log(`database ${ident.dbName}, Redis prefix ${ident.redisPrefix}, logs in ${logDir}`);
  await migrate(ident);
  const upstream = await startUpstream(cfg.streamSeconds * 50 * 4);
  gens = new Generators(3, { nice: argv.includes('--nice-generators') ? 10 : 0 });
  await gens.start();

  const maxSockets = Math.max(...cfg.steps);
  const results = { date: new Date().toISOString(), mode: quick ? 'quick' : 'full', machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, fdLimit: fdLimit() }, config: { ...cfg, only, niceGenerators: argv.includes('--nice-generators') }, sam: null, bare: null };

  let pool;
  let chatPool;
  if (runSam) {
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
      { pool, chatPool, upstream, password: null, twoNodes: async () => [await startBare({ port: basePort + 3, nodeId: 'bare-r1', ...bareOpts, redisPrefix: `bare-${ident.id}:` }), await startBare({ port: basePort + 4, nodeId: 'bare-r2', ...bareOpts, redisPrefix: `bare-${ident.id}:` })] },
    );
    results.bare = result;
  }

  results.loadAverages = loadAverages;
  results.elapsedSeconds = Math.round((Date.now() - started) / 1000);
  const report = renderReport(results);
  results.targets = report.targets;
  const dir = path.join(root, 'bench/results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${results.date.replace(/[:]/g, '-').replace(/\..+$/, '')}${quick ? '-quick' : ''}${only ? `-only-${only.join('-')}` : ''}.json`);
  fs.writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`\n${report.markdown}\n`);
  log(`results written to ${path.relative(root, file)}`);
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
async function runAll(kind, nodes, restart, secondNode, { pool, chatPool, upstream, password, twoNodes }) {
  let a = nodes[0];
  const out = {};
  /**
   * Runs one scenario: collects garbage in the generators and on the nodes it measures (by default the current
   * one), waits for a quiet machine, logs it, and records its window for `--profile`. The scenarios run one after
   * another in the same processes; without the collection, a major GC owed to the one before (the storm's 19,500
   * closed sockets, the handshakes' thousands) could land in the next one's window.
   */
  const phase = async (s, run, collectOn = [a]) => {
    await collectGarbage(gens, collectOn);
    const quiet = await settle();
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

  let n = 0;
  if (wanted('capacity')) {
    out.capacity = await phase('1. capacity and memory (3 sockets per user, one task update per user every 10 s)', () => capacity({ gens }, [a], { steps: cfg.steps, windowMs: cfg.windowMs, connectRate: cfg.connectRate, pool, urls: [a.url], budgetEndsAt: budgetEndsAt - cfg.budgetMs / 3, log }));
    n = out.capacity.remaining;
    out.fanoutSockets = n;
  }

  if (wanted('fanout')) {
    out.fanout = await phase(`3. fan-out at ${n} sockets`, () => fanout({ gens }, { rates: cfg.fanoutRates, ms: cfg.fanoutMs, drainMs: cfg.drainMs, budgetEndsAt, log }));
  }

  if (password && wanted('logins')) {
    out.logins = await phase(`5. logins at ${cfg.loginRate}/s with ${n} sockets under background load`, () =>
      logins({ gens }, a, { rate: cfg.loginRate, ms: cfg.loginMs, drainMs: quick ? 3_000 : 10_000, pool, password, bgRate: Math.max(1, Math.round(n / 30)), log }),
    );
  }

  if (wanted('storm')) {
    // Full runs restart gracefully (SIGTERM, as a deploy does); quick runs crash-restart (SIGKILL) to stay short,
    // unless profiled: a killed process writes no profile.
    const restartKind = quick && !profile ? 'SIGKILL' : 'SIGTERM';
    const storm = await phase(`2b. reconnect storm: restart (${restartKind}) with ${n} sockets`, () =>
      reconnectStorm({ gens }, a, { restart: () => restart(a, restartKind), timeoutMs: quick ? 20_000 : 60_000, log }),
    );
    storm.result.restartKind = restartKind;
    a = storm.node;
    out.reconnect = storm.result;
  }
  await gens.all('disconnect', () => ({}));
  await sleep(1_500);

  if (wanted('handshakes')) {
    out.handshakes = await phase('2a. handshakes at fixed arrival rates', () => handshakes({ gens }, { rates: cfg.hsRates, ms: cfg.hsMs, pool, urls: [a.url], budgetEndsAt: Infinity, log }));
  }

  if (wanted('relay')) {
    out.relay = await phase(`4. assistant relay: ${cfg.streams} streams at 50 tokens/s, 3 tabs each, starting at ${cfg.streamStartRate}/s`, async () => {
      // The node restarted in 2b: a few streams first (full runs), so that the figures are those of a warm process.
      const relayArgs = { upstream, pool: chatPool, urls: [a.url], connectRate: cfg.connectRate, streamSeconds: cfg.streamSeconds, startRate: cfg.streamStartRate };
      if (!quick) await relay({ gens }, { ...relayArgs, streams: 20, log: (m) => log(`  warm-up:${m}`) });
      return relay({ gens }, { ...relayArgs, streams: cfg.streams, log });
    });
  }

  if (!wanted('two')) return { result: out, node: a };
  const fanoutUsers = Math.floor((n || Math.max(...cfg.steps)) / 3);
  let pair;
  if (twoNodes) {
    await stopNode(a);
    pair = await twoNodes();
  } else {
    pair = [a, await secondNode()];
  }
  out.twoNodes = {};
  const c = await phase(`6. two nodes with the Redis adapter: fan-out at ${fanoutUsers * 3} sockets, tabs spread over both nodes`, async () => {
    const connected = await connectUsers(gens, { users: pool.slice(0, fanoutUsers), urls: pair.map((p) => p.url), set: 'two', rate: cfg.connectRate });
    out.twoNodes.connectFailed = connected.failed;
    out.twoNodes.fanoutSockets = connected.ok;
    // The second node is a fresh process: a little load first (full runs), so that the figures are those of warm processes.
    if (!quick) await runLoad(gens, { rate: 100, ms: 2_000, drainMs: 1_000 });
    out.twoNodes.fanout = await fanout({ gens }, { rates: cfg.twoNodeRates, ms: cfg.fanoutMs, drainMs: cfg.drainMs, budgetEndsAt: budgetEndsAt + 60_000, log });
    return connected;
  }, pair);
  if (cfg.twoNodeCapacity) {
    // The issue's figure first, then twice the one-node fan-out when that is more; the largest that holds counts.
    const userSteps = [...new Set([Math.min(TWO_NODE_TARGET_SOCKETS / 3, 2 * fanoutUsers), 2 * fanoutUsers])];
    out.twoNodes.capacityCheck = await twoNodeCapacity({ gens }, pair, {
      userSteps, connectedUsers: fanoutUsers, connectedSockets: c.ok, pool, connectRate: cfg.connectRate, windowMs: cfg.windowMs,
      // Not before connecting: each step collects garbage itself once its sockets are connected.
      phase: (sockets, run) => phase(`6. two nodes: capacity check at ${sockets} sockets`, run, []), log,
    });
  }
  await gens.all('disconnect', () => ({}));
  for (const p of pair) if (p !== a || twoNodes) await stopNode(p);
  return { result: out, node: a };
}

main()
  .then(() => finish(0))
  .catch((err) => {
    console.error(err);
    void finish(1);
  });
