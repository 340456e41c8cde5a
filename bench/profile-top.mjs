// Summarises a V8 .cpuprofile (node --cpu-prof): top functions by self time.
// Usage: node bench/profile-top.mjs <file.cpuprofile> [count]
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
  return { file: path.basename(file), totalMs: Math.round(total / 1000), busyMs: Math.round(busy / 1000), rows };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = topSelf(process.argv[2], Number(process.argv[3] ?? 25));
  console.log(`${r.file}: busy ${r.busyMs} ms of ${r.totalMs} ms`);
  for (const row of r.rows) console.log(`${String(row.pctOfBusy).padStart(5)}%  ${String(row.ms).padStart(7)} ms  ${row.fn}`);
}
