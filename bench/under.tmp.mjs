import fs from 'node:fs';
const [file, pat, depthS = '1'] = process.argv.slice(2);
const depth = Number(depthS);
const p = JSON.parse(fs.readFileSync(file, 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const dt = new Map();
p.samples.forEach((id, i) => dt.set(id, (dt.get(id) ?? 0) + (p.timeDeltas[i + 1] ?? 0)));
const label = (n) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/.*node_modules\//, 'nm:/').replace(/.*\/dist\//, '')}:${n.callFrame.lineNumber + 1}`;
const agg = new Map();
let total = 0;
for (const [id, t] of dt) {
  const chain = [];
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) chain.push(cur);
  chain.reverse();
  const i = chain.findIndex((c) => label(byId.get(c)).includes(pat));
  if (i < 0) continue;
  total += t;
  const key = chain.slice(i + 1, i + 1 + depth).map((c) => label(byId.get(c))).join(' > ') || '(self)';
  agg.set(key, (agg.get(key) ?? 0) + t);
}
console.log(`under ${pat}: ${(total / 1000).toFixed(0)} ms`);
for (const [k, t] of [...agg].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${((100 * t) / total).toFixed(1).padStart(5)}% ${(t / 1000).toFixed(0).padStart(6)} ms  ${k}`);
