// Summarises a V8 .cpuprofile (node --cpu-prof): top functions by self time,
// and self time charged to the package (or server folder) whose code ran or
// called into native code: `writev` under `ws` counts for ws.
// Usage: node bench/profile-top.mjs <file.cpuprofile> [count]
//        node bench/profile-top.mjs <file.cpuprofile> --timeline [pkg,pkg,…]
// The timeline prints, per second of the profile, how busy the main thread was
// and the share of each listed package (as charged above), e.g. the ORM's share
// while streams start: --timeline @mikro-orm/core,knex,pg
import fs from 'node:fs';
import path from 'node:path';

export function topSelf(file, count = 20) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  // samples[i] was taken timeDeltas[i] after the previous one: charge that interval to samples[i].
  for (let i = 0; i < prof.samples.length; i++) {
    const id = prof.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
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
  return { file: path.basename(file), totalMs: Math.round(total / 1000), busyMs: Math.round(busy / 1000), rows, packages: byPackage(prof, selfUs, busy) };
}

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

function byPackage(prof, selfUs, busy) {
  const ownerOfNode = ownerLookup(prof);
  const agg = new Map();
  for (const [id, us] of selfUs) {
    const o = ownerOfNode(id);
    if (o === '(idle)') continue;
    agg.set(o, (agg.get(o) ?? 0) + us);
  }
  return [...agg.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([pkg, us]) => ({ pkg, ms: Math.round(us / 1000), pctOfBusy: Math.round((1000 * us) / busy) / 10 }));
}

/** Per second of the profile: busy share of the main thread and of each of `packages`. */
export function timeline(file, packages) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const ownerOfNode = ownerLookup(prof);
  const seconds = [];
  let t = prof.startTime;
  for (let i = 0; i < prof.samples.length; i++) {
    const us = prof.timeDeltas[i] ?? 0;
    t += us;
    const s = Math.floor((t - prof.startTime) / 1e6);
    seconds[s] ??= { busy: 0, pkgs: packages.map(() => 0) };
    const o = ownerOfNode(prof.samples[i]);
    if (o === '(idle)') continue;
    seconds[s].busy += us;
    const k = packages.indexOf(o);
    if (k >= 0) seconds[s].pkgs[k] += us;
  }
  return seconds.map((x, s) => ({ second: s, busyPct: Math.round((x?.busy ?? 0) / 1e4), pkgPct: packages.map((_, k) => Math.round((x?.pkgs[k] ?? 0) / 1e4)) }));
}

if (import.meta.url === `file://${process.argv[1]}` && process.argv[3] === '--timeline') {
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
