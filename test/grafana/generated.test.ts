import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { dashboardJson } from '../../grafana/generate/dashboard.js';
import { buildRules, rulesYaml } from '../../grafana/generate/rules.js';

const repo = (path: string) => new URL(`../../${path}`, import.meta.url);
const read = (path: string) => readFileSync(repo(path), 'utf8');

interface Target {
  expr: string;
  datasource: { uid: string };
}
interface Panel {
  type: string;
  title: string;
  targets?: Target[];
}

describe('generated Grafana files', () => {
  it('the committed rules are what the generator writes (run `npm run grafana`)', () => {
    expect(read('grafana/rules/outpost.rules.yaml')).toBe(rulesYaml());
  });

  it('the committed dashboard is what the generator writes (run `npm run grafana`)', () => {
    expect(read('grafana/dashboards/outpost.json')).toBe(dashboardJson());
  });

  it('the dashboard loads by file provisioning: no __inputs, every query on the datasource variable', () => {
    const dashboard = JSON.parse(read('grafana/dashboards/outpost.json')) as {
      __inputs?: unknown;
      uid: string;
      panels: Panel[];
      templating: { list: { name: string; type: string }[] };
    };
    expect(dashboard.__inputs).toBeUndefined();
    expect(dashboard.uid).toBe('outpost-links');
    expect(dashboard.templating.list.map((v) => `${v.name}:${v.type}`)).toEqual([
      'datasource:datasource',
      'instance:query',
      'container:query',
    ]);
    const withQueries = dashboard.panels.filter((p) => p.type !== 'row');
    expect(withQueries.map((p) => p.type)).toContain('nodeGraph');
    for (const panel of withQueries) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const t of panel.targets!) expect(t.datasource.uid, panel.title).toBe('${datasource}');
    }
  });

  it('links every alert to a section of the runbook in the repository', () => {
    const runbook = read('docs/runbook.md');
    const anchors = new Set([...runbook.matchAll(/^## (\w+)$/gm)].map((m) => m[1]!.toLowerCase()));
    const alerts = buildRules().groups[0]!.rules.filter((r) => 'alert' in r) as { alert: string; annotations: Record<string, string> }[];
    expect(alerts.length).toBe(13);
    for (const a of alerts) {
      const anchor = a.annotations.runbook_url!.split('#')[1];
      expect(anchor).toBe(a.alert.toLowerCase());
      expect(anchors.has(anchor!), a.alert).toBe(true);
    }
  });

  it('takes its look-back and thresholds from the configuration', () => {
    const rules = parse(
      rulesYaml({ lookback: '7d', closeWaitThreshold: 200, connectFailuresThreshold: 3, connectFailuresWindow: '2m' }),
    ) as ReturnType<typeof buildRules>;
    const byName = new Map(rules.groups[0]!.rules.map((r) => ['alert' in r ? r.alert : r.record, r.expr]));
    expect(byName.get('OutpostNewLink')).toContain('[7d] offset 5m');
    expect(byName.get('OutpostCloseWaitPileUp')).toContain('> 200');
    expect(byName.get('OutpostConnectFailures')).toContain('>= 3');
    expect(byName.get('outpost:container_tcp_connect_failures:window')).toContain('[2m]');
    const paging = buildRules({ unexpectedSeverity: 'page' }).groups[0]!.rules.find(
      (r) => 'alert' in r && r.alert === 'OutpostUnexpectedConnection',
    );
    expect(paging && 'labels' in paging && paging.labels.severity).toBe('page');
  });
});

describe('promtool', () => {
  it('accepts the rules file', () => {
    const check = spawnSync('promtool', ['check', 'rules', repo('grafana/rules/outpost.rules.yaml').pathname], { encoding: 'utf8' });
    expect(check.stderr).toBe('');
    expect(check.stdout).toContain('SUCCESS: 45 rules found');
    expect(check.status).toBe(0);
  });

  it('passes the rule unit tests: each alert fires where it must and stays quiet where it must not', () => {
    const test = spawnSync('promtool', ['test', 'rules', repo('grafana/rules/tests/outpost.rules.test.yaml').pathname], {
      encoding: 'utf8',
    });
    expect(test.stdout + test.stderr).toContain('SUCCESS');
    expect(test.status).toBe(0);
  });

  it('has a firing and a quiet case for every alert', () => {
    const tests = parse(read('grafana/rules/tests/outpost.rules.test.yaml')) as {
      tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
    };
    const cases = tests.tests.flatMap((t) => t.alert_rule_test);
    const alerts = (buildRules().groups[0]!.rules.filter((r) => 'alert' in r) as { alert: string }[]).map((r) => r.alert);
    for (const name of alerts) {
      expect(
        cases.some((c) => c.alertname === name && c.exp_alerts.length > 0),
        `${name} fires`,
      ).toBe(true);
      expect(
        cases.some((c) => c.alertname === name && c.exp_alerts.length === 0),
        `${name} stays quiet`,
      ).toBe(true);
    }
  });
});
