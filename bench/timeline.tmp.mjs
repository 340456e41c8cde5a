import fs from 'node:fs';
const p = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n.callFrame.functionName]));
const buckets = [];
let t = p.startTime;
p.samples.forEach((id, i) => {
  t += p.timeDeltas[i];
  const b = Math.floor((t - p.startTime) / 1e6);
  buckets[b] ??= { busy: 0, gc: 0 };
  const f = byId.get(id);
  if (f === '(idle)') return;
  if (f === '(garbage collector)') buckets[b].gc += p.timeDeltas[i + 1] ?? 0;
  buckets[b].busy += p.timeDeltas[i + 1] ?? 0;
});
console.log(buckets.map((b, i) => `${i}:${Math.round((b?.busy ?? 0) / 1e4)}%`).join(' '));
