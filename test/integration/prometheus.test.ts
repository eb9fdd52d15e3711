import { describe, expect, it } from 'vitest';
import { buildDashboard } from '../../grafana/generate/dashboard.js';
import { rulesYaml } from '../../grafana/generate/rules.js';
import { type Scenario, docker, kernelSockets, pidOf, waitFor } from '../support/docker.js';
import { test } from '../support/lab.js';
import type { TestExporter } from '../support/exporter.js';
import type { DataFrame, DataTransformerConfig } from '@grafana/data';
import type { ConnectionEvent } from '../../src/events/connectionEvent.js';
import { rowsOf, tableFrames, transformFrames } from '../support/grafanaPanel.js';
import { TestPrometheus, type PromAlert, type PromSample } from '../support/prometheus.js';

/**
 * The shipped rules and dashboard against a real Prometheus scraping a real outpost. The rules
 * are the shipped ones with windows shortened from days and hours to seconds.
 */
const SHORT_WINDOWS = { lookback: '2m', settle: '10s', steadyWindow: '40s', restartQuiet: '10s', connectionsWindow: '10s', interval: '1s' };

describe('alerts and dashboard on a live Prometheus', () => {
  let scenario: Scenario;
  let exporter: TestExporter;
  let prometheus: TestPrometheus;
  let instance: string;
  let server: string;
  let client: string;
  let steadyClient: string;
  let api: string;
  let poller: string;
  let guarded: string;
  let intruder: string;
  /** Seconds from the unexpected connection to its alert firing. */
  let unexpectedFiredAfter: number;

  const alertsNamed = async (name: string, labels: Record<string, string>): Promise<PromAlert[]> =>
    (await prometheus.alerts()).filter((a) => a.labels.alertname === name && Object.entries(labels).every(([k, v]) => a.labels[k] === v));

  test.beforeAll(async ({ lab }) => {
    scenario = lab.scenario('prom');
    const net = await scenario.network('net', ['10.213.20.0/24']);
    server = await scenario.run('server', ['--network', net], ['nc', '-ll', '-p', '8080', '-e', 'cat']);
    steadyClient = await scenario.run('steady', ['--network', net], ['sh', '-c', `sleep 100000 | nc ${server} 8080`]);
    // Runs from the start, but opens its connection only when the test says so.
    client = await scenario.run('client', ['--network', net], ['sleep', '100000']);
    // An HTTP API, and a container that will call it once a second: a link of short connections.
    api = await scenario.run('api', ['--network', net], ['sh', '-c', 'mkdir -p /www; echo ok > /www/index.html; httpd -f -p 9000 -h /www']);
    poller = await scenario.run('poller', ['--network', net], ['sleep', '100000']);
    // A database that expects its clients: only the steady client may connect, on 5432.
    guarded = await scenario.run(
      'guarded',
      ['--network', net, '--label', `outpost.allow.inbound=${steadyClient}:5432`],
      ['nc', '-ll', '-p', '5432', '-e', 'cat'],
    );
    intruder = await scenario.run('intruder', ['--network', net], ['sleep', '100000']);
    const serverPid = await pidOf(server);
    await waitFor('the steady connection', async () => (await kernelSockets(serverPid)).some((s) => s.state === 'established'));
    // The ebpf source (what `auto` picks here): failed connects are counted by it alone.
    exporter = await lab.exporter({ socketSource: 'ebpf' });
    instance = new URL(exporter.url).host;
    prometheus = await TestPrometheus.start(instance, rulesYaml(SHORT_WINDOWS));
    lab.defer(() => prometheus.stop());
    // The new-link rule needs history older than its settle time before anything counts as new.
    await waitFor(
      'history older than the settle time',
      async () => (await prometheus.query('count_over_time(outpost:instance:up[2m] offset 10s) > 0')).length > 0,
      60_000,
    );
  }, 120_000);

  it('raises OutpostNewLink for a new connection, on both ends, and not for the steady one', async () => {
    await docker(['exec', '-d', client, 'sh', '-c', `sleep 100000 | nc ${server} 8080 & echo $! > /nc.pid; wait`]);
    const [outbound] = await waitFor('the new-link alert of the client', async () => {
      const found = await alertsNamed('OutpostNewLink', { container: client });
      return found.length ? found : undefined;
    });
    expect(outbound!.labels).toMatchObject({ instance, direction: 'outbound', peer: server, port: '8080', severity: 'warning' });
    expect(outbound!.annotations.summary).toBe(`New link ${client} outbound ${server}:8080`);
    expect(['pending', 'firing']).toContain(outbound!.state);
    const inbound = await waitFor('the new-link alert of the server', async () => {
      const found = await alertsNamed('OutpostNewLink', { container: server, peer: client });
      return found.length ? found : undefined;
    });
    expect(inbound[0]!.labels).toMatchObject({ direction: 'inbound', port: '8080' });
    expect(await alertsNamed('OutpostNewLink', { container: steadyClient })).toEqual([]);
  }, 60_000);

  it('raises OutpostNewLink for a link made only of short connections, on both ends', async () => {
    await docker(['exec', '-d', poller, 'sh', '-c', `while true; do wget -q -O /dev/null http://${api}:9000/; sleep 1; done`]);
    const [outbound] = await waitFor('the new-link alert of the poller', async () => {
      const found = await alertsNamed('OutpostNewLink', { container: poller });
      return found.length ? found : undefined;
    });
    expect(outbound!.labels).toMatchObject({ instance, direction: 'outbound', peer: api, port: '9000' });
    const inbound = await waitFor('the new-link alert of the API', async () => {
      const found = await alertsNamed('OutpostNewLink', { container: api, peer: poller });
      return found.length ? found : undefined;
    });
    expect(inbound[0]!.labels).toMatchObject({ direction: 'inbound', port: '9000' });
    // Never open at a scrape, only counted.
    expect(await prometheus.query(`max_over_time(container_tcp_established{container="${poller}"}[5m])`)).toEqual([]);
    await waitFor(
      'the poller counted',
      async () =>
        (await prometheus.query(`container_tcp_connections_total{container="${poller}", remote_container="${api}"} > 3`)).length === 1,
    );
  }, 60_000);

  it('raises OutpostUnexpectedConnection at once for one short connection the policy does not allow', async () => {
    expect(await alertsNamed('OutpostUnexpectedConnection', {})).toEqual([]);
    await docker(['exec', intruder, 'sh', '-c', `echo hello | timeout 2 nc ${guarded} 5432; true`]);
    const connected = Date.now();
    const firing = await waitFor('the unexpected-connection alert to fire', async () => {
      const found = (await alertsNamed('OutpostUnexpectedConnection', { container: guarded })).filter((a) => a.state === 'firing');
      return found.length ? found : undefined;
    });
    unexpectedFiredAfter = (Date.now() - connected) / 1000;
    expect(firing[0]!.labels).toMatchObject({ instance, direction: 'inbound', peer: intruder, port: '5432', severity: 'critical' });
    expect(firing[0]!.annotations.summary).toBe(`Unexpected connection ${guarded} inbound ${intruder}:5432`);
    // Its link to the exporter's events: the one connection, with the process that accepted it.
    const answer = (await (await fetch(firing[0]!.annotations.events_url!)).json()) as { events: ConnectionEvent[] };
    expect(answer.events.map((e) => `${e.container} ${e.direction} ${e.peer.container}:${e.port} ${e.process.name}`)).toEqual([
      `${guarded} inbound ${intruder}:5432 nc`,
    ]);
    // Both ends: the intruder, whom no rule covers, is named by the guarded end's rule.
    await waitFor(
      'the alert of the intruder end',
      async () => (await alertsNamed('OutpostUnexpectedConnection', { container: intruder, peer: guarded })).length > 0,
    );
    // Never open at a scrape: the counter alone made it fire.
    expect(await prometheus.query(`max_over_time(container_tcp_established{container="${intruder}"}[5m])`)).toEqual([]);
    // Scrapes and evaluations are 1 s apart: firing within a few of them.
    expect(unexpectedFiredAfter).toBeLessThan(10);
    console.info(`OutpostUnexpectedConnection fired ${unexpectedFiredAfter.toFixed(1)} s after the connection`);
    // Now a long-lived one, for the dashboard's table and the map's red edge.
    await docker(['exec', '-d', intruder, 'sh', '-c', `sleep 100000 | nc ${guarded} 5432`]);
    await waitFor(
      'the long unexpected connection',
      async () => (await prometheus.query(`container_tcp_unexpected_established{container="${guarded}"}`)).length === 1,
    );
  }, 60_000);

  it('raises OutpostConnectFailures at once for a burst of refused connects (the ebpf source)', async () => {
    expect(await alertsNamed('OutpostConnectFailures', {})).toEqual([]);
    // Nobody listens on 5999 in the API's container: each connect is refused.
    await docker(['exec', client, 'sh', '-c', `i=0; while [ $i -lt 12 ]; do nc ${api} 5999 </dev/null; i=$((i+1)); done; true`]);
    const firing = await waitFor('the connect-failures alert to fire', async () => {
      const found = (await alertsNamed('OutpostConnectFailures', { container: client })).filter((a) => a.state === 'firing');
      return found.length ? found : undefined;
    });
    expect(firing).toHaveLength(1);
    expect(firing[0]!.labels).toMatchObject({
      instance,
      direction: 'outbound',
      peer: api,
      port: '5999',
      reason: 'refused',
      severity: 'warning',
    });
    expect(firing[0]!.annotations.summary).toBe(`Container ${client} failed 12 connects to ${api}:5999 (refused)`);
    // Failed connects are no link.
    expect(await prometheus.query(`outpost:link:active{container="${client}", port="5999"}`)).toEqual([]);
  }, 60_000);

  it('raises OutpostLinkDisappeared when the steady new link is closed, and only for it', async () => {
    // Steady: present in every evaluation of the (shortened) steady window.
    await waitFor(
      'the link to be steady',
      async () =>
        (
          await prometheus.query(
            `count_over_time(outpost:link:established{container="${client}"}[40s]) >= on (instance) group_left () count_over_time(outpost:instance:up[40s])`,
          )
        ).length > 0,
      90_000,
    );
    // Prometheus' own record of alert states: a firing is kept there after it resolves.
    const fired = async () =>
      (await prometheus.query('max_over_time(ALERTS{alertname="OutpostLinkDisappeared", alertstate="firing"}[5m])')).map(
        (s) => `${s.metric.container} ${s.metric.direction} ${s.metric.peer}:${s.metric.port} ${s.metric.severity}`,
      );
    expect(await fired()).toEqual([]);
    await docker(['exec', client, 'sh', '-c', 'kill $(cat /nc.pid)']);
    const gone = await waitFor('the disappeared alerts of both ends', async () => {
      const found = await fired();
      return found.length >= 2 ? found : undefined;
    });
    // The link of short connections, used every second, is steady too, as the rules define it
    // (present in at least steadyRatio, 0.9, of the window's evaluations), and does not flap.
    expect(
      (
        await prometheus.query(
          `count_over_time(outpost:link:active{container="${poller}"}[40s]) >= on (instance) group_left () 0.9 * count_over_time(outpost:instance:up[40s])`,
        )
      ).length,
    ).toBe(1);
    expect(gone.sort()).toEqual([`${client} outbound ${server}:8080 warning`, `${server} inbound ${client}:8080 warning`].sort());
  }, 90_000);

  it('returns data for every query of every dashboard panel and variable', async () => {
    const dashboard = buildDashboard();
    const substitute = (expr: string) =>
      expr
        .replaceAll('$instance', instance)
        .replaceAll('$container', '.*')
        .replaceAll('$__range', '1m')
        .replaceAll('$__rate_interval', '1m');
    let checked = 0;
    for (const panel of dashboard.panels ?? []) {
      if (panel.type === 'row') continue;
      for (const target of (panel as { targets?: { expr: string; instant?: boolean }[] }).targets ?? []) {
        const expr = substitute(target.expr);
        const result = target.instant ? await prometheus.query(expr) : await prometheus.queryRange(expr, 30);
        expect(result.length, `${panel.title}: ${expr}`).toBeGreaterThan(0);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(8);
    for (const variable of dashboard.templating.list ?? []) {
      if ((variable.type as string) !== 'query') continue;
      const m = /^label_values\((.+), (\w+)\)$/.exec(typeof variable.query === 'string' ? variable.query : '');
      expect(m, variable.name).not.toBeNull();
      const values = await prometheus.labelValues(m![2]!, substitute(m![1]!));
      expect(values.length, variable.name).toBeGreaterThan(0);
    }
  });

  it("feeds the link map panel, through Grafana's own transformations, nodes and edges, each edge with its traffic, RTT and retransmit ratio", async () => {
    const panel = buildDashboard().panels!.find((p) => p.type === 'nodeGraph') as unknown as {
      targets: { refId: string; expr: string }[];
      transformations: DataTransformerConfig[];
    };
    // Every query at one instant, after the rules evaluated it.
    const at = Date.now() / 1000 - 2;
    const answers = Object.fromEntries(
      await Promise.all(panel.targets.map(async (t) => [t.refId, await prometheus.query(t.expr.replaceAll('$instance', instance), at)])),
    ) as Record<string, PromSample[]>;
    const frames = await transformFrames(panel.transformations, tableFrames(answers));
    // The node graph takes the frame with source and target fields as its edges, the other as its nodes.
    const isEdges = (frame: DataFrame) => frame.fields.some((f) => f.name === 'source');
    expect(frames.map(isEdges).sort()).toEqual([false, true]);
    const nodes = rowsOf(frames.find((f) => !isEdges(f))!);
    const edges = rowsOf(frames.find(isEdges)!);

    // A container's node is name@instance, titled by its name, its instance under it.
    const node = (name: string) => `${name}@${instance}`;
    expect(nodes.map((n) => n.id)).toEqual(expect.arrayContaining([server, steadyClient, client].map(node)));
    for (const n of nodes.filter((n) => String(n.id).includes('@'))) expect(`${String(n.title)}@${String(n.subtitle)}`).toBe(n.id);
    for (const n of nodes) expect(n.mainstat, String(n.id)).toEqual(expect.any(Number));
    expect(edges).toContainEqual(
      expect.objectContaining({
        source: node(steadyClient),
        target: node(server),
        detail__port: '8080',
        id: `${node(steadyClient)} → ${node(server)} → 8080`,
        mainstat: 1,
      }),
    );
    // The link of short connections is an edge too.
    expect(edges).toContainEqual(expect.objectContaining({ source: node(poller), target: node(api), detail__port: '9000', color: 'gray' }));
    // The unexpected link is red.
    expect(edges).toContainEqual(
      expect.objectContaining({ source: node(intruder), target: node(guarded), detail__port: '5432', color: 'red' }),
    );
    // Every edge ends at a node.
    const ids = new Set(nodes.map((n) => n.id));
    for (const edge of edges) expect(ids.has(edge.source) && ids.has(edge.target), String(edge.id)).toBe(true);

    // The poller's HTTP calls: the edge carries that link's own figures (its records by link
    // labels, not by edge id), what a call a second sends and receives, a bridge's RTT, no loss.
    const polled = edges.find((e) => e.source === node(poller) && e.target === node(api))!;
    const ofPollerLink = async (record: string) => {
      const [sample] = await prometheus.query(`${record}{container="${poller}", direction="outbound", peer="${api}", port="9000"}`, at);
      return Number(sample?.value?.[1]);
    };
    const traffic = (await ofPollerLink('outpost:link:sent_bytes:rate')) + (await ofPollerLink('outpost:link:received_bytes:rate'));
    expect(traffic).toBeGreaterThan(0);
    expect(polled.secondarystat).toBeCloseTo(traffic, 6);
    expect(polled.detail__rtt).toBeCloseTo(await ofPollerLink('outpost:link:rtt_seconds'), 9);
    expect(polled.detail__rtt).toBeGreaterThan(0);
    expect(polled.detail__rtt).toBeLessThan(0.005);
    expect(polled.detail__retransmit_ratio).toBe(0);
  });
});
