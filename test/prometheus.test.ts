/**
 * The operators' kit against a real Prometheus (Debian's 2.42, /usr/bin/prometheus): it scrapes two production
 * nodes with their METRICS_TOKEN, loads alerts.yml, and fires SamNodeDown when one node is killed. Every metric
 * the rules and the Grafana dashboard (deploy/grafana/sam.json) query is exported by a running node.
 *
 * The configuration is made FROM deploy/prometheus/prometheus.yml (the README's), changing only what a test must:
 * the targets, the token file's path, and 1 s scrape and evaluation intervals. SamNodeDown's `for: 1m` is made 5 s
 * in the copy of alerts.yml Prometheus loads, so the test takes seconds rather than minutes; that the real
 * minute holds (pending at 2m, firing at 4m) is proved by promtool in deploy/prometheus/alerts.test.yml.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { productionEnv, randomSecret, uniquePrefix } from './support/env.js';
import { startNodeProcess, type NodeProcess } from './support/app.js';
import { freePort } from './support/net.js';
import { runProcess } from './support/process.js';
import { signUp } from './support/users.js';
import { connectError, connectReady } from './support/sockets.js';
import { exportedNames, scrapeMetrics } from './support/metrics.js';
import { until } from './support/until.js';

const root = path.resolve(import.meta.dirname, '..');
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');
const metricsToken = randomSecret();

/** Replaces `from` by `to` in `text`, and fails unless it occurs exactly once (the file's shape changed). */
function substitute(text: string, from: string | RegExp, to: string): string {
  const count = typeof from === 'string' ? text.split(from).length - 1 : [...text.matchAll(new RegExp(from, 'gm'))].length;
  if (count !== 1) throw new Error(`expected one ${String(from)} in the file, found ${count}`);
  return text.replace(from, to);
}

interface Prometheus {
  url: string;
  child: ChildProcess;
}

let nodes: NodeProcess[] = [];
let prometheus: Prometheus | undefined;
let dir: string;

async function api<T>(pathAndQuery: string): Promise<T> {
  const res = await fetch(`${prometheus!.url}${pathAndQuery}`);
  const body = (await res.json()) as { status: string; data: T };
  if (body.status !== 'success') throw new Error(`${pathAndQuery}: ${JSON.stringify(body)}`);
  return body.data;
}

interface Target {
  scrapeUrl: string;
  health: string;
  lastError: string;
}
interface Alert {
  labels: Record<string, string>;
  state: string;
}
interface Rule {
  type: 'alerting' | 'recording';
  name: string;
  query: string;
  health: string;
  lastError?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

beforeAll(async () => {
  const shared = { REDIS_PREFIX: uniquePrefix(), SECRET_KEY: randomSecret(), METRICS_TOKEN: metricsToken, RATE_LIMIT_PER_MINUTE: '10000' };
  nodes = await Promise.all([startNodeProcess(productionEnv({ ...shared, NODE_ID: 'prom-a' })), startNodeProcess(productionEnv({ ...shared, NODE_ID: 'prom-b' }))]);

  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sam-prometheus-'));
  const tokenFile = path.join(dir, 'sam-metrics-token');
  fs.writeFileSync(tokenFile, metricsToken, { mode: 0o600 });
  let config = read('deploy/prometheus/prometheus.yml');
  config = substitute(config, 'scrape_interval: 15s', 'scrape_interval: 1s');
  config = substitute(config, 'evaluation_interval: 15s', 'evaluation_interval: 1s');
  config = substitute(config, 'credentials_file: /etc/prometheus/sam-metrics-token', `credentials_file: ${tokenFile}`);
  config = substitute(config, "targets: ['node-1:3000', 'node-2:3000']", `targets: ['127.0.0.1:${nodes[0]!.port}', '127.0.0.1:${nodes[1]!.port}']`);
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), config);
  // rule_files are relative to the configuration's directory: alerts.yml beside it, SamNodeDown's minute made 5 s.
  const alerts = substitute(read('deploy/prometheus/alerts.yml'), /(- alert: SamNodeDown\n\s+expr: [^\n]+\n\s+)for: 1m/, '$1for: 5s');
  fs.writeFileSync(path.join(dir, 'alerts.yml'), alerts);
  const check = await runProcess(['check', 'config', path.join(dir, 'prometheus.yml')], {}, { command: 'promtool' });
  expect(check.code, check.stdout + check.stderr).toBe(0);

  const port = await freePort();
  let output = '';
  const child = spawn(
    'prometheus',
    [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  const url = `http://127.0.0.1:${port}`;
  prometheus = { url, child };
  await until(
    () => fetch(`${url}/-/ready`).then((r) => r.status, () => 0),
    (status) => status === 200 || child.exitCode !== null,
    30_000,
    'Prometheus ready',
  );
  if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${output}`);
}, 90_000);

afterAll(async () => {
  const child = prometheus?.child;
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  await Promise.all(nodes.map((n) => n.stop()));
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'offset', 'bool', 'inf', 'nan']);
/** Series Prometheus makes itself, not a node. */
const PROMETHEUS_OWN = new Set(['up', 'ALERTS']);

/** The metric names a PromQL expression reads (recording rules included, by their names). */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
    .replace(/\boffset\s+\S+/g, '');
  const names: string[] = [];
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const before = bare[m.index - 1];
    const after = bare.slice(m.index + m[0].length).trimStart()[0];
    if (after === '(' || PROMQL_WORDS.has(m[0].toLowerCase()) || (before !== undefined && /[0-9.]/.test(before))) continue;
    names.push(m[0]);
  }
  return names;
}

describe('a real Prometheus scraping two nodes', () => {
  it('scrapes both nodes with the metrics token, and every rule evaluates without error', async () => {
    const targets = await until(
      () => api<{ activeTargets: Target[] }>('/api/v1/targets?state=active').then((d) => d.activeTargets),
      (t) => t.length === 2 && t.every((x) => x.health === 'up'),
      30_000,
      'both targets up',
    );
    expect(targets.map((t) => new URL(t.scrapeUrl).port).sort()).toEqual(nodes.map((n) => String(n.port)).sort());
    const groups = await until(
      () => api<{ groups: { rules: (Rule & { lastEvaluation: string })[] }[] }>('/api/v1/rules').then((d) => d.groups),
      (g) => g.length > 0 && g.every((x) => x.rules.every((r) => r.lastEvaluation !== '0001-01-01T00:00:00Z')),
      15_000,
      'every rule evaluated',
    );
    const rules = groups.flatMap((g) => g.rules);
    expect(rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.lastError}`)).toEqual([]);
  }, 60_000);

  it('every metric the rules and the dashboard query is exported by a running node', async () => {
    // A node that has done each kind of thing once: REST requests, a socket, an event, a refused handshake, a close.
    const node = nodes[0]!;
    const user = await signUp(node.url);
    const tab = await connectReady(node.url, user.auth.accessToken);
    await tab.call('task:create', { title: 'Watch the watchers' });
    tab.close();
    expect(await connectError(node.url, 'not-a-token')).toBe('UNAUTHENTICATED');
    const exported = await until(
      () => scrapeMetrics(node.url, metricsToken).then(exportedNames),
      (names) => names.has('sam_socket_disconnections_total'),
      10_000,
      'the socket close counted',
    );

    const { groups } = await api<{ groups: { rules: Rule[] }[] }>('/api/v1/rules');
    const rules = groups.flatMap((g) => g.rules);
    const recorded = new Map(rules.filter((r) => r.type === 'recording').map((r) => [r.name, r.query]));
    /** Names a query reads, recording rules replaced by the names their own queries read. */
    const sources = (expr: string, seen = new Set<string>()): string[] =>
      metricNames(expr).flatMap((name) => {
        const query = recorded.get(name);
        if (query === undefined) return [name];
        if (seen.has(name)) return [];
        seen.add(name);
        return sources(query, seen);
      });

    const dashboard = JSON.parse(read('deploy/grafana/sam.json')) as {
      panels: { title: string; targets?: { expr: string }[] }[];
      templating: { list: { name: string; definition?: string }[] };
      annotations: { list: { name: string; expr?: string }[] };
    };
    const queries: { where: string; expr: string }[] = [
      ...rules.map((r) => ({ where: `alerts.yml ${r.name}`, expr: r.query })),
      ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `sam.json "${p.title}"`, expr: t.expr }))),
      ...dashboard.templating.list.filter((v) => v.definition).map((v) => ({ where: `sam.json $${v.name}`, expr: v.definition!.replace(/^label_values\(([^,]+),.*$/, '$1') })),
      ...dashboard.annotations.list.filter((a) => a.expr).map((a) => ({ where: `sam.json annotation ${a.name}`, expr: a.expr! })),
    ];
    expect(queries.length).toBeGreaterThan(50);
    const missing: string[] = [];
    let checked = 0;
    for (const { where, expr } of queries) {
      for (const name of sources(expr)) {
        checked++;
        if (!exported.has(name) && !PROMETHEUS_OWN.has(name)) missing.push(`${where}: ${name}`);
      }
    }
    expect(checked).toBeGreaterThan(50);
    expect(missing).toEqual([]);
    // Histograms are read through their buckets: the extractor must see those names, not lose them.
    expect(queries.flatMap((q) => sources(q.expr))).toContain('sam_socket_event_duration_seconds_bucket');
  }, 60_000);

  it('fires SamNodeDown for the node that was killed (SIGKILL), and only for it', async () => {
    const [alive, killed] = nodes as [NodeProcess, NodeProcess];
    await killed.kill();
    const firing = await until(
      () => api<{ alerts: Alert[] }>('/api/v1/alerts').then((d) => d.alerts.filter((a) => a.labels.alertname === 'SamNodeDown' && a.state === 'firing')),
      (a) => a.length > 0,
      45_000,
      'SamNodeDown firing',
    );
    expect(firing.map((a) => a.labels.instance)).toEqual([`127.0.0.1:${killed.port}`]);
    expect(firing[0]!.labels).toMatchObject({ job: 'sam', severity: 'critical' });
    expect(firing.some((a) => a.labels.instance === `127.0.0.1:${alive.port}`)).toBe(false);
  }, 60_000);
});
