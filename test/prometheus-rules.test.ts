/**
 * The operators' alert rules (deploy/prometheus/alerts.yml) with Prometheus's own tool: they load, their unit
 * tests (alerts.test.yml) pass, every alert has a test that fires it and one that does not, its severity, summary,
 * description and a runbook section that exists; the README shows deploy/prometheus/prometheus.yml as it is.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runProcess } from './support/process.js';

const root = path.resolve(import.meta.dirname, '..');
const dir = path.join(root, 'deploy/prometheus');
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');
const promtool = (...args: string[]) => runProcess(args, {}, { command: 'promtool', cwd: root, timeoutMs: 120_000 });

/** The alerts of alerts.yml, each with the text of its rule. */
function alertBlocks(): Map<string, string> {
  const blocks = new Map<string, string>();
  for (const part of read('deploy/prometheus/alerts.yml').split(/^ {6}- (?=alert: |record: )/m).slice(1)) {
    const alert = /^alert: (\S+)/.exec(part);
    if (alert) blocks.set(alert[1]!, part);
  }
  return blocks;
}

/** The anchors of docs/runbook.md's headings, as GitHub and most renderers make them. */
function runbookAnchors(): Set<string> {
  return new Set(
    read('docs/runbook.md')
      .split('\n')
      .filter((l) => /^#{1,6} /.test(l))
      .map((l) =>
        l
          .replace(/^#+ /, '')
          .toLowerCase()
          .replace(/[^a-z0-9 _-]/g, '')
          .replace(/ /g, '-'),
      ),
  );
}

describe('deploy/prometheus/alerts.yml', () => {
  it('promtool check rules accepts it', async () => {
    const result = await promtool('check', 'rules', path.join(dir, 'alerts.yml'));
    expect(result.stdout + result.stderr).toContain('SUCCESS');
    expect(result.code, result.stdout + result.stderr).toBe(0);
  });

  it('promtool test rules passes every unit test of alerts.test.yml', async () => {
    const result = await promtool('test', 'rules', path.join(dir, 'alerts.test.yml'));
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('SUCCESS');
  }, 120_000);

  it('every alert has a unit test that fires it and one that does not', () => {
    const tests = read('deploy/prometheus/alerts.test.yml').split(/^ {6}- eval_time: /m).slice(1);
    const firing = new Set<string>();
    const quiet = new Set<string>();
    for (const test of tests) {
      const name = /alertname: (\S+)/.exec(test)?.[1];
      if (!name) continue;
      (/exp_alerts: \[\]/.test(test) ? quiet : firing).add(name);
    }
    const alerts = [...alertBlocks().keys()];
    expect(alerts.length).toBeGreaterThanOrEqual(14);
    expect(alerts.filter((a) => !firing.has(a)), 'alerts without a firing test').toEqual([]);
    expect(alerts.filter((a) => !quiet.has(a)), 'alerts without a test where they stay quiet').toEqual([]);
  });

  it('every alert has a severity, a summary, a description and a runbook_url to its own section of docs/runbook.md', () => {
    const anchors = runbookAnchors();
    for (const [name, rule] of alertBlocks()) {
      expect(rule, name).toMatch(/^ +severity: (critical|warning)$/m);
      expect(rule, name).toMatch(/^ +summary: \S/m);
      expect(rule, name).toMatch(/^ +description: \S/m);
      const url = /^ +runbook_url: (\S+)$/m.exec(rule)?.[1];
      expect(url, name).toBe(`docs/runbook.md#${name.toLowerCase()}`);
      expect(anchors.has(name.toLowerCase()), `docs/runbook.md has a section ${name}`).toBe(true);
    }
  });

  it('recording rules are named level:metric:operations, at the level of the deployment or of one node', () => {
    const records = [...read('deploy/prometheus/alerts.yml').matchAll(/- record: (\S+)/g)].map((m) => m[1]!);
    expect(records.length).toBeGreaterThan(0);
    for (const name of records) expect(name).toMatch(/^(sam|sam_instance):[a-z0-9_]+:[a-z0-9_]+$/);
  });
});

describe('deploy/prometheus/prometheus.yml', () => {
  it('is the configuration the README shows, as it is', () => {
    const config = read('deploy/prometheus/prometheus.yml');
    expect(read('README.md')).toContain('```yaml\n' + config + '```');
  });
});
