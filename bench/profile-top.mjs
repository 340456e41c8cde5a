// Summarises a V8 .cpuprofile (node --cpu-prof): top functions by self time,
// and self time charged to the package (or server folder) whose code ran or
// called into native code: `writev` under `ws` counts for ws.
// Usage: node bench/profile-top.mjs <file.cpuprofile> [count]
//        node bench/profile-top.mjs <file.cpuprofile> --timeline [pkg,pkg,…]
//        node bench/profile-top.mjs <file.cpuprofile> --window <fromUs>,<toUs>
// The timeline prints, per second of the profile, how busy the main thread was
// and the share of each listed package (as charged above), e.g. the ORM's share
// while streams start: --timeline @mikro-orm/core,knex,pg
// A window (CLOCK_MONOTONIC microseconds, the clock of `process.hrtime` and of
// the profile's own timestamps) summarises only the samples taken in it: the
// bench records each phase's window and summarises every phase this way.
import fs from 'node:fs';
import path from 'node:path';

export function topSelf(file, count = 20) {
  const r = summarise(loadProfile(file), count);
  return { ...r, packages: r.packages.slice(0, 25) };
}

/** A profile with what every summary needs: its nodes by id and the package each node's self time is charged to. */
function loadProfile(file) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  return { prof, name: path.basename(file), byId: new Map(prof.nodes.map((n) => [n.id, n])), ownerOfNode: ownerLookup(prof) };
}

/**
 * Calls `fn(nodeId, us, t)` for every sample: samples[i] was taken timeDeltas[i]
 * after the previous one, so that interval (`us`) is charged to samples[i],
 * taken at `t` on the profile's clock (µs).
 */
function eachSample(prof, fn) {
  let t = prof.startTime;
  for (let i = 0; i < prof.samples.length; i++) {
    const us = prof.timeDeltas[i] ?? 0;
    t += us;
    fn(prof.samples[i], us, t);
  }
}

/** Self time per profile node, of the samples taken in `window` ({ fromUs, toUs } on the profile's clock), or of all of them. */
function selfTimes(prof, window) {
  const selfUs = new Map();
  eachSample(prof, (id, us, t) => {
    if (window && (t < window.fromUs || t > window.toUs)) return;
    selfUs.set(id, (selfUs.get(id) ?? 0) + us);
  });
  return selfUs;
}

function summarise(loaded, count, window) {
  const { prof, name, byId } = loaded;
  const selfUs = selfTimes(prof, window);
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const agg = new Map();
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    const where = url ? `${url.replace(/^file:\/\//, '').replace(/^.*node_modules\//, 'nm:/').replace(process.cwd() + path.sep, '')}:${lineNumber + 1}` : '';
    const k = `${functionName || '(anonymous)'} ${where}`.trim();
    agg.set(k, (agg.get(k) ?? 0) + us);
  }
  const busy = total - (agg.get('(idle)') ?? 0);
  const rows = [...agg.entries()]
    .filter(([k]) => k !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([fn, us]) => ({ fn, ms: Math.round(us / 1000), pctOfBusy: Math.round((1000 * us) / busy) / 10 }));
  return { file: name, totalMs: Math.round(total / 1000), busyMs: Math.round(busy / 1000), rows, packages: byPackage(loaded.ownerOfNode, selfUs, busy) };
}

/**
 * What the main thread did in each window (the bench's phases) that the
 * profile covers: busy share of the window, top packages and functions, and
 * the share that is not the socket layer bare also runs (see `socketLayer`).
 */
export function byWindow(file, windows, count = 8) {
  const loaded = loadProfile(file);
  const { prof, name } = loaded;
  const out = [];
  for (const w of windows) {
    const fromUs = Math.max(w.fromUs, prof.startTime);
    const toUs = Math.min(w.toUs, prof.endTime);
    if (toUs - fromUs < 1e6) continue; // the process did not live through (a second of) this phase
    const r = summarise(loaded, count, { fromUs, toUs });
    const wallMs = Math.round((toUs - fromUs) / 1000);
    const pct = (ms) => Math.round((1000 * ms) / r.busyMs) / 10;
    const gcMs = r.packages.find((p) => p.pkg === '(garbage collector)')?.ms ?? 0;
    const socketMs = r.packages.filter((p) => socketLayer.has(p.pkg)).reduce((a, p) => a + p.ms, 0);
    out.push({
      phase: w.label,
      file: name,
      wallMs,
      busyPct: Math.round((100 * r.busyMs) / wallMs),
      busyMs: r.busyMs,
      gcPct: pct(gcMs),
      socketLayerPct: pct(socketMs),
      otherPct: Math.round((100 - pct(gcMs) - pct(socketMs)) * 10) / 10,
      packages: r.packages.slice(0, count),
      rows: r.rows.slice(0, count),
    });
  }
  return out;
}

/**
 * The socket layer (and the Node internals it calls) that bare runs too; what
 * a Sam profile spends elsewhere, GC aside, is work bare does not do: the
 * database, Redis, auth, validation and Sam's own code. `byPackage` charges
 * native time (writev, say) to the package that called it; `(program)` is V8
 * and Node outside JavaScript.
 */
const socketLayer = new Set(['ws', 'engine.io', 'engine.io-parser', 'socket.io', 'socket.io-parser', 'socket.io-adapter', 'node:internal', 'node:net', 'node:events', '(program)']);

/** `node_modules/<pkg>` → pkg, `dist/server/<dir>/…` → server/<dir>, `node:…` → node:<module>. */
function ownerOf(url) {
  if (!url) return null;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1];
  const own = /dist\/(server(?:\/features)?\/[^/]+)/.exec(url);
  if (own) return own[1].replace(/\.js$/, '');
  return url.replace(/^file:\/\//, '');
}

/** For each profile node, the package its self time is charged to. */
function ownerLookup(prof) {
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const owner = new Map();
  const ownerOfNode = (id) => {
    if (owner.has(id)) return owner.get(id);
    const { functionName, url } = byId.get(id).callFrame;
    // Native code and Node's own modules count for the nearest package above them.
    let o = url.startsWith('node:') ? null : ownerOf(url);
    if (!o) {
      const p = parent.get(id);
      const fallback = url.startsWith('node:') ? url.split('/')[0] : functionName || '(native)';
      o = p === undefined || ['(root)', '(program)', '(garbage collector)', '(idle)'].includes(functionName) ? fallback : ownerOfNode(p);
      if (o === '(root)') o = fallback;
    }
    owner.set(id, o);
    return o;
  };
  return ownerOfNode;
}

function byPackage(ownerOfNode, selfUs, busy) {
  const agg = new Map();
  for (const [id, us] of selfUs) {
    const o = ownerOfNode(id);
    if (o === '(idle)') continue;
    agg.set(o, (agg.get(o) ?? 0) + us);
  }
  return [...agg.entries()].sort((a, b) => b[1] - a[1]).map(([pkg, us]) => ({ pkg, ms: Math.round(us / 1000), pctOfBusy: Math.round((1000 * us) / busy) / 10 }));
}

/** Per second of the profile: busy share of the main thread and of each of `packages`. */
export function timeline(file, packages) {
  const { prof, ownerOfNode } = loadProfile(file);
  const seconds = [];
  eachSample(prof, (id, us, t) => {
    const s = Math.floor((t - prof.startTime) / 1e6);
    seconds[s] ??= { busy: 0, pkgs: packages.map(() => 0) };
    const o = ownerOfNode(id);
    if (o === '(idle)') return;
    seconds[s].busy += us;
    const k = packages.indexOf(o);
    if (k >= 0) seconds[s].pkgs[k] += us;
  });
  return seconds.map((x, s) => ({ second: s, busyPct: Math.round((x?.busy ?? 0) / 1e4), pkgPct: packages.map((_, k) => Math.round((x?.pkgs[k] ?? 0) / 1e4)) }));
}

if (import.meta.url === `file://${process.argv[1]}` && process.argv[3] === '--window') {
  const [fromUs, toUs] = (process.argv[4] ?? '').split(',').map(Number);
  for (const w of byWindow(process.argv[2], [{ label: `${fromUs}–${toUs}`, fromUs, toUs }], 20)) printWindow(w);
} else if (import.meta.url === `file://${process.argv[1]}` && process.argv[3] === '--timeline') {
  const packages = process.argv[4]?.split(',') ?? [];
  for (const row of timeline(process.argv[2], packages)) {
    console.log(`${String(row.second).padStart(4)} s  busy ${String(row.busyPct).padStart(3)}%${packages.map((p, k) => `  ${p} ${row.pkgPct[k]}%`).join('')}`);
  }
} else if (import.meta.url === `file://${process.argv[1]}`) {
  const r = topSelf(process.argv[2], Number(process.argv[3] ?? 25));
  console.log(`${r.file}: busy ${r.busyMs} ms of ${r.totalMs} ms`);
  for (const row of r.rows) console.log(`${String(row.pctOfBusy).padStart(5)}%  ${String(row.ms).padStart(7)} ms  ${row.fn}`);
  console.log('by package (native time charged to its caller):');
  for (const row of r.packages) console.log(`${String(row.pctOfBusy).padStart(5)}%  ${String(row.ms).padStart(7)} ms  ${row.pkg}`);
}

function printWindow(w) {
  console.log(`${w.phase} (${w.file}): main thread busy ${w.busyPct}% of ${w.wallMs} ms; of busy: GC ${w.gcPct}%, socket layer ${w.socketLayerPct}%, the rest ${w.otherPct}%`);
  for (const p of w.packages) console.log(`${String(p.pctOfBusy).padStart(5)}%  ${String(p.ms).padStart(7)} ms  ${p.pkg}`);
  for (const r of w.rows) console.log(`${String(r.pctOfBusy).padStart(5)}%  ${String(r.ms).padStart(7)} ms  ${r.fn}`);
}
