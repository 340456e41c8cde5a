import fs from 'node:fs';
const [file, ...pats] = process.argv.slice(2);
const p = JSON.parse(fs.readFileSync(file, 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const memo = new Map();
const hit = (id) => {
  if (memo.has(id)) return memo.get(id);
  const n = byId.get(id);
  let r = pats.findIndex((q) => n.callFrame.url.includes(q));
  if (r < 0 && parent.has(id)) r = hit(parent.get(id));
  memo.set(id, r);
  return r;
};
const buckets = [];
let t = p.startTime;
p.samples.forEach((id, i) => {
  t += p.timeDeltas[i];
  const b = Math.floor((t - p.startTime) / 1e6);
  buckets[b] ??= { busy: 0, m: pats.map(() => 0) };
  const d = p.timeDeltas[i + 1] ?? 0;
  if (byId.get(id).callFrame.functionName === '(idle)') return;
  buckets[b].busy += d;
  const h = hit(id);
  if (h >= 0) buckets[b].m[h] += d;
});
buckets.forEach((b, i) => b && b.busy > 2e5 && console.log(`${i}s busy ${Math.round(b.busy / 1e4)}% ` + pats.map((q, k) => `${q.split('/').pop()} ${Math.round(b.m[k] / 1e4)}%`).join(' ')));
