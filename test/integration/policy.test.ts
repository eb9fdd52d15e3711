import { spawnSync } from 'node:child_process';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Scenario, docker, kernelSockets, pidOf, waitFor } from '../support/docker.js';
import { test } from '../support/lab.js';
import { startTestExporter, type TestExporter } from '../support/exporter.js';
import { describeSeries, select, type Series } from '../support/exposition.js';

const LABELS = ['container', 'direction', 'remote_container', 'port'];
const WEB_REQUESTS = 3;

/**
 * A compose-like shop: web → api:8080 (short HTTP requests), api → db:5432 (one long-lived
 * connection) are expected; a stray container opens one short connection to db, and api one
 * long-lived connection to the cache: exactly those two are unexpected.
 */
class Shop {
  readonly c: Record<'web' | 'api' | 'db' | 'cache' | 'stray', string> = { web: '', api: '', db: '', cache: '', stray: '' };
  readonly project: string;

  constructor(
    readonly scenario: Scenario,
    readonly withLabels: boolean,
  ) {
    this.project = scenario.prefix.replace(/-/g, '');
  }

  async start(subnet: string): Promise<void> {
    const net = await this.scenario.network('net', [subnet]);
    const run = async (service: keyof Shop['c'], allow: { outbound?: string; inbound?: string }, command: string[]) => {
      const labels = ['--label', `com.docker.compose.project=${this.project}`, '--label', `com.docker.compose.service=${service}`];
      if (this.withLabels && allow.outbound !== undefined) labels.push('--label', `outpost.allow.outbound=${allow.outbound}`);
      if (this.withLabels && allow.inbound !== undefined) labels.push('--label', `outpost.allow.inbound=${allow.inbound}`);
      this.c[service] = await this.scenario.run(service, ['--network', net, ...labels], command);
    };
    const serve = (port: number) => ['sh', '-c', `mkdir -p /www; echo ok > /www/index.html; httpd -f -p ${port} -h /www`];
    await run('db', { inbound: 'api:5432' }, ['nc', '-ll', '-p', '5432', '-e', 'cat']);
    await run('cache', {}, ['nc', '-ll', '-p', '6379', '-e', 'cat']);
    await run('api', { inbound: 'web:8080', outbound: 'db:5432' }, serve(8080));
    await run('web', { outbound: 'api:8080' }, ['sleep', '100000']);
    await run('stray', {}, ['sleep', '100000']);
    await docker(['exec', '-d', this.c.api, 'sh', '-c', `sleep 100000 | nc ${this.c.db} 5432`]);
    await waitFor('api → db', async () => (await kernelSockets(await pidOf(this.c.db))).some((s) => s.state === 'established'));
  }

  /** The traffic of the scenario: web's requests, the stray connection, and (once) api → cache. */
  async traffic({ cache }: { cache: boolean }): Promise<void> {
    for (let i = 0; i < WEB_REQUESTS; i++)
      await docker(['exec', this.c.web, 'wget', '-q', '-O', '/dev/null', `http://${this.c.api}:8080/`]);
    await docker(['exec', this.c.stray, 'sh', '-c', `echo hello | timeout 2 nc ${this.c.db} 5432; true`]);
    if (cache) {
      await docker(['exec', '-d', this.c.api, 'sh', '-c', `sleep 100000 | nc ${this.c.cache} 6379`]);
      await waitFor('api → cache', async () => (await kernelSockets(await pidOf(this.c.cache))).some((s) => s.state === 'established'));
    }
  }

  /** The series of `name` of this shop's containers, described. */
  series(all: Series[], name: string): string[] {
    const mine = new Set(Object.values(this.c));
    return describeSeries(
      select(all, name).filter((s) => mine.has(s.labels.container!)),
      LABELS,
    );
  }
}

const line = (container: string, direction: string, peer: string, port: number, value: number) =>
  `container=${container} direction=${direction} remote_container=${peer} port=${port} => ${value}`;

describe('expected links from container labels', () => {
  const shop = new Shop(new Scenario('policy-labels'), true);
  let exporter: TestExporter;
  let after: Series[];

  test.beforeAll(async ({ lab }) => {
    lab.defer(() => shop.scenario.cleanup());
    await shop.start('10.213.61.0/24');
    exporter = await lab.exporter();
    await exporter.scrape();
    await shop.traffic({ cache: true });
    after = await exporter.scrape();
  });
  // What this describe made goes before the next one starts.
  test.afterAll(async ({ lab }) => {
    await lab.close();
  });

  it('counts exactly the stray and the cache connections as unexpected, on both ends, once each', () => {
    const { web, api, db, cache, stray } = shop.c;
    expect(shop.series(after, 'container_tcp_unexpected_connections_total')).toEqual(
      [
        line(api, 'outbound', cache, 6379, 1),
        line(cache, 'inbound', api, 6379, 1),
        line(db, 'inbound', stray, 5432, 1),
        line(stray, 'outbound', db, 5432, 1),
      ].sort(),
    );
    expect(shop.series(after, 'container_tcp_unexpected_established')).toEqual(
      [line(api, 'outbound', cache, 6379, 1), line(cache, 'inbound', api, 6379, 1)].sort(),
    );
    // The allowed links are there, and counted in full; they are just not unexpected.
    expect(shop.series(after, 'container_tcp_connections_total')).toEqual(
      expect.arrayContaining([line(web, 'outbound', api, 8080, WEB_REQUESTS), line(api, 'inbound', web, 8080, WEB_REQUESTS)]),
    );
    expect(select(after, 'container_tcp_established', { container: api, remote_container: db })).toHaveLength(1);
  });

  it('passes promtool check metrics with the policy series in the exposition', async () => {
    const { text } = await exporter.fetchText('/metrics');
    expect(text).toContain('container_tcp_unexpected_connections_total{');
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.stdout + check.stderr).toBe('');
  });

  it('reports the label rules on /policy, with what each allowed', async () => {
    const report = JSON.parse((await exporter.fetchText('/policy')).text) as {
      rules: { source: string; origin: string; covers: { outbound: string[]; inbound: string[] }; allowed_links_last_evaluation: number }[];
      last_evaluation: { unexpected: { container: string }[] };
    };
    const dbRule = report.rules.find((r) => r.origin === `container ${shop.c.db}, label outpost.allow.inbound="api:5432"`);
    expect(dbRule).toMatchObject({ source: 'label', covers: { outbound: [], inbound: [shop.c.db] } });
    expect(dbRule!.allowed_links_last_evaluation).toBeGreaterThan(0);
    expect(report.last_evaluation.unexpected.map((u) => u.container)).toEqual(expect.arrayContaining([shop.c.api, shop.c.cache]));
    expect(select(after, 'outpost_policy_rules', { source: 'label' })[0]!.value).toBeGreaterThanOrEqual(4);
  });

  it('suggests a policy file that, fed back, finds nothing unexpected in the same traffic', async () => {
    const suggested = await exporter.fetchText('/policy/suggest');
    expect(suggested.status).toBe(200);
    expect(suggested.text).toContain(`service: stray`);
    const dir = await mkdtemp(join(tmpdir(), 'outpost-policy-'));
    const file = join(dir, 'suggested.yaml');
    await writeFile(file, suggested.text);
    const fed = await startTestExporter({ policyFile: file });
    try {
      const strayConnections = (series: Series[]) =>
        select(series, 'container_tcp_connections_total', { container: shop.c.stray, remote_container: shop.c.db })[0]?.value ?? 0;
      const before = strayConnections(await fed.scrape());
      await shop.traffic({ cache: false });
      const series = await fed.scrape();
      expect(shop.series(series, 'container_tcp_unexpected_connections_total')).toEqual([]);
      expect(shop.series(series, 'container_tcp_unexpected_established')).toEqual([]);
      // The same traffic was seen: the stray connection is counted, just not unexpected.
      expect(strayConnections(series)).toBe(before + 1);
    } finally {
      await fed.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('expected links from a policy file, reloaded while running', () => {
  const shop = new Shop(new Scenario('policy-file'), false);
  let dir: string;
  let file: string;
  let exporter: TestExporter;
  const policy = (extra = '') => `# the shop's expected links
rules:
  - name: web to api
    from: {project: ${shop.project}, service: web}
    to: {project: ${shop.project}, service: api}
    ports: [8080]
  - from: {project: ${shop.project}, service: api}
    to: {container: "*-db"}
    ports: [5432]
${extra}`;
  // An atomic replace, as editors and config management do.
  const writePolicy = async (text: string) => {
    await writeFile(`${file}.new`, text);
    await rename(`${file}.new`, file);
  };

  test.beforeAll(async ({ lab }) => {
    lab.defer(() => shop.scenario.cleanup());
    dir = await mkdtemp(join(tmpdir(), 'outpost-policy-'));
    lab.defer(() => rm(dir, { recursive: true, force: true }));
    file = join(dir, 'policy.yaml');
    await writeFile(file, policy());
    await shop.start('10.213.62.0/24');
    exporter = await lab.exporter({ policyFile: file });
    await exporter.scrape();
  });

  it('finds the same unexpected connections as the labels do', async () => {
    await shop.traffic({ cache: true });
    const series = await exporter.scrape();
    const { api, db, cache, stray } = shop.c;
    expect(shop.series(series, 'container_tcp_unexpected_connections_total')).toEqual(
      [
        line(api, 'outbound', cache, 6379, 1),
        line(cache, 'inbound', api, 6379, 1),
        line(db, 'inbound', stray, 5432, 1),
        line(stray, 'outbound', db, 5432, 1),
      ].sort(),
    );
    expect(select(series, 'outpost_policy_rules', { source: 'file' })[0]!.value).toBe(2);
    expect(select(series, 'outpost_policy_last_reload_success', { file })[0]!.value).toBe(1);
  });

  it('applies an edit on the next scrape, and keeps the running policy when an edit is broken', async () => {
    const { db, stray } = shop.c;
    await writePolicy(
      policy(`  - from: {project: ${shop.project}, service: stray}\n    to: {project: ${shop.project}, service: db}\n    ports: [5432]\n`),
    );
    await waitFor(
      'the edit to load',
      async () => select(await exporter.scrape(), 'outpost_policy_rules', { source: 'file' })[0]?.value === 3,
    );
    const strayUnexpected = async () =>
      select(await exporter.scrape(), 'container_tcp_unexpected_connections_total', { container: db, remote_container: stray })[0]?.value;
    const before = await strayUnexpected();
    await shop.traffic({ cache: false });
    expect(await strayUnexpected()).toBe(before);

    await writePolicy(`${policy()}  - from: nowhere\n    to: {port: 1}\n`);
    const failed = await waitFor('the broken edit to be refused', async () => {
      const series = await exporter.scrape();
      return select(series, 'outpost_policy_last_reload_success', { file })[0]?.value === 0 && series;
    });
    expect(select(failed, 'outpost_policy_rules', { source: 'file' })[0]!.value).toBe(3);
    expect(exporter.logs()).toMatch(
      /policy file not reloaded, the running policy stays: invalid --policy.file: [^"]+:10: rules\[2\]\.from: expected/,
    );
    const report = JSON.parse((await exporter.fetchText('/policy')).text) as { file: { last_reload_success: boolean; last_error: string } };
    expect(report.file.last_reload_success).toBe(false);
    expect(report.file.last_error).toMatch(/policy\.yaml:10: rules\[2\]\.from: expected/);
    // Still the edited policy: the stray link stays allowed.
    await shop.traffic({ cache: false });
    expect(await strayUnexpected()).toBe(before);
  });
});
