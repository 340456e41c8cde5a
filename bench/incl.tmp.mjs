import fs from 'node:fs';
const [file, ...pats] = process.argv.slice(2);
const p = JSON.parse(fs.readFileSync(file, 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const dt = new Map();
p.samples.forEach((id, i) => dt.set(id, (dt.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
const label = (n) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/.*node_modules\//, 'nm:/').replace(/.*\/dist\//, '')}:${n.callFrame.lineNumber + 1}`;
const incl = new Map();
let busy = 0;
for (const [id, t] of dt) {
  const n0 = byId.get(id);
  if (['(idle)', '(program)', '(garbage collector)'].includes(n0.callFrame.functionName)) continue;
  busy += t;
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const l = label(byId.get(cur));
    if (seen.has(l)) continue;
    seen.add(l);
    incl.set(l, (incl.get(l) ?? 0) + t);
  }
}
const rows = [...incl].filter(([l]) => !pats.length || pats.some((q) => l.includes(q))).sort((a, b) => b[1] - a[1]).slice(0, 60);
console.log(`busy ${(busy / 1000).toFixed(0)} ms`);
for (const [l, t] of rows) console.log(`${((100 * t) / busy).toFixed(1).padStart(5)}% ${(t / 1000).toFixed(0).padStart(7)} ms  ${l}`);
