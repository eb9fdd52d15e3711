import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { rulesYaml } from '../../grafana/generate/rules.js';
import { type Scenario, docker, kernelSockets, pidOf, waitFor } from '../support/docker.js';
import { test } from '../support/lab.js';
import type { TestExporter } from '../support/exporter.js';
import { parseExposition, select, type Series } from '../support/exposition.js';
import { expectMatchesKernel, withoutDockerDns } from '../support/kernelView.js';
import { TestPrometheus, type PromSample } from '../support/prometheus.js';
import { SimulatedHost, TestNamespace } from '../support/simulatedHost.js';

const MAIN = new URL('../../dist/main.js', import.meta.url).pathname;
/** The shipped rules, evaluated every second, with a connections window of seconds. */
const RULES = rulesYaml({ interval: '1s', connectionsWindow: '30s' });

/**
 * Two Docker hosts on one machine: this machine's engine is host A; host B is a second engine
 * in a network namespace of its own, joined by a veth pair on 10.213.72.0/24 (A is .1, B .2).
 * One outpost per host, one real Prometheus scraping both with the shipped rules.
 *
 * - A's client (on A's default bridge) calls B's srv through B's host address and the ports it
 *   publishes, 18080 and 18082, and B's web (HTTP, short connections) through 18081: B sees A's
 *   host address. B's web closes first, so the short connections' TIME_WAIT is on B: B counts
 *   each, A only those a collection sees open (docs/many-hosts.md).
 * - B's worker, on a routed network of B (no masquerading), calls A's api on a routed network
 *   of A by its container address, and A's api sees worker's own address.
 * - B's srv has 172.17.240.x on B's private default bridge; a listener that is no container of
 *   A holds the same address on A's default bridge, and A's client talks to it: a 172.17 address
 *   on both hosts, which must not be joined across them.
 */
describe('many hosts: links across two Docker hosts resolved in Prometheus', () => {
  let hostB: SimulatedHost;
  let outpostB: ChildProcess;
  let exporterA: TestExporter;
  let prometheus: TestPrometheus;
  let a: Scenario;
  let b: Scenario;
  let instanceA: string;
  let instanceB: string;
  let client: string;
  let api: string;
  let srv: string;
  let web: string;
  let worker: string;
  let srvPrivateAddress: string;

  const scrapeB = async (): Promise<Series[]> => parseExposition(await (await fetch(`http://${instanceB}/metrics`)).text());
  /** outpost:link:active of one container, as "direction peer:port @remote_instance". */
  const recordedLinks = async (instance: string, container: string): Promise<string[]> =>
    (await prometheus.query(`outpost:link:active{instance="${instance}", container="${container}"}`)).map(
      (s: PromSample) => `${s.metric.direction} ${s.metric.peer}:${s.metric.port} @${s.metric.remote_instance ?? ''}`,
    );

  test.beforeAll(async ({ lab }) => {
    a = lab.scenario('xh-a');
    // Host B's default bridge is private like A's (172.17.0.0/16), its containers from the top
    // of it, so that their addresses are free on A's bridge.
    const [subnetA, deviceA] = (
      await docker([
        'network',
        'inspect',
        '-f',
        '{{range .IPAM.Config}}{{.Subnet}}{{end}} {{index .Options "com.docker.network.bridge.name"}}',
        'bridge',
      ])
    ).split(' ');
    expect(subnetA).toBe('172.17.0.0/16');
    hostB = await SimulatedHost.start('outpost-xh-b', 'outpost-xhb', '10.213.72', [
      '--bip',
      '172.17.0.1/16',
      '--fixed-cidr',
      '172.17.240.0/20',
    ]);
    lab.defer(() => hostB.stop());
    b = lab.scenario('xh-b', hostB.dockerHost);

    // Routed networks: no masquerading, each host routes the other's subnet through the pair.
    const masqueradeOff = ['-o', 'com.docker.network.bridge.enable_ip_masquerade=false'];
    const routedA = await a.network('routed', ['10.213.81.0/24'], { internal: false, extra: masqueradeOff });
    const routedB = await b.network('routed', ['10.213.82.0/24'], { internal: false, extra: masqueradeOff });
    await hostB.routeTo('10.213.82.0/24');
    await hostB.routeFrom('10.213.81.0/24');
    await hostB.allowForward('10.213.82.0/24', '10.213.81.0/24');

    api = await a.run('api', ['--network', routedA], ['nc', '-ll', '-p', '9000', '-e', 'cat']);
    srv = await b.run('srv', ['-p', '18080:8080', '-p', '18082:8080'], ['nc', '-ll', '-p', '8080', '-e', 'cat']);
    web = await b.run('web', ['-p', '18081:9000'], ['sh', '-c', 'mkdir -p /www; echo ok > /www/index.html; httpd -f -p 9000 -h /www']);
    srvPrivateAddress = await b.ip(srv, 'bridge');
    expect(srvPrivateAddress).toMatch(/^172\.17\.24\d\.\d+$/);
    const apiAddress = await a.ip(api, routedA);
    worker = await b.run(
      'worker',
      ['--network', routedB],
      ['sh', '-c', `while ! nc ${apiAddress} 9000 -e sleep 1000000; do sleep 1; done`],
    );

    // Not a container of A: a namespace on A's default bridge with srv's address on B.
    const ghost = await TestNamespace.create('outpost-xh-ghost', 'outpost-xhg', '', {
      device: deviceA!,
      address: srvPrivateAddress,
      prefixLength: 16,
    });
    lab.defer(() => ghost.destroy());
    const ghostListener = ghost.spawn('busybox', ['nc', '-ll', '-p', '5432', '-e', 'cat']);
    lab.defer(() => ghostListener.kill('SIGKILL'));

    const B = hostB.address;
    // Its policy allows B's srv by name on 18080 (which only Prometheus can tell) and the 172.17
    // listener by address; not srv on 18082, nor B's web.
    const allowed = `${srv}:18080,${srvPrivateAddress}:5432`;
    client = await a.run(
      'client',
      ['--network', 'bridge', '--label', `outpost.allow.outbound=${allowed}`],
      [
        'sh',
        '-c',
        [
          `(while ! nc ${B} 18080 -e sleep 1000000; do sleep 1; done) &`,
          `(while ! nc ${B} 18082 -e sleep 1000000; do sleep 1; done) &`,
          `(while ! nc ${srvPrivateAddress} 5432 -e sleep 1000000; do sleep 1; done) &`,
          // One short HTTP call a second: never open at a scrape, counted at both ends.
          `while true; do timeout 2 wget -q -O /dev/null http://${B}:18081/; sleep 1; done`,
        ].join('\n'),
      ],
    );

    exporterA = await lab.exporter();
    instanceA = new URL(exporterA.url).host;
    instanceB = `${hostB.address}:9057`;
    outpostB = hostB.namespace.spawn(process.execPath, [
      MAIN,
      `--docker.host=${hostB.dockerHost}`,
      `--host.pid=${hostB.daemonPid}`,
      `--web.listen-address=${instanceB}`,
      '--log.level=warn',
    ]);
    lab.defer(async () => {
      if (outpostB.exitCode !== null) return;
      outpostB.kill('SIGTERM');
      await once(outpostB, 'exit');
    });
    await waitFor("host B's outpost", async () => (await fetch(`http://${instanceB}/healthz`)).ok);
    prometheus = await TestPrometheus.start([instanceA, instanceB], RULES);
    lab.defer(() => prometheus.stop());
  }, 180_000);

  it("each outpost sees its own host: B's sockets equal the kernel's, and each publishes its host addresses and ports", async () => {
    const seriesB = await waitFor('B to see both ends of its links', async () => {
      const series = await scrapeB();
      return select(series, 'container_tcp_established', { container: worker }).length > 0 &&
        select(series, 'container_tcp_established', { container: srv }).length > 0
        ? series
        : undefined;
    });
    for (const container of [srv, worker]) {
      expectMatchesKernel(seriesB, [container], withoutDockerDns(await kernelSockets(await pidOf(container, hostB.dockerHost))));
    }
    // B's addresses are read in B's namespace: its end of the pair, not its private bridge.
    expect(select(seriesB, 'outpost_host_address_info').map((s) => s.labels.address)).toEqual([hostB.address]);
    expect(
      select(seriesB, 'outpost_published_port_info', { container: srv })
        .map((s) => `${s.labels.host_address}:${s.labels.host_port}->${s.labels.container_port}`)
        .sort(),
    ).toEqual(['0.0.0.0:18080->8080', '0.0.0.0:18082->8080', ':::18080->8080', ':::18082->8080']);
    expect(select(seriesB, 'outpost_container_address_info', { container: srv })[0]!.labels).toMatchObject({
      address: srvPrivateAddress,
      scope: 'host',
    });
    expect(select(seriesB, 'outpost_container_address_info', { container: worker })[0]!.labels).toMatchObject({
      address: '10.213.82.2',
      scope: 'global',
    });

    const seriesA = await exporterA.scrape();
    const addressesA = select(seriesA, 'outpost_host_address_info').map((s) => s.labels.address);
    expect(addressesA).toContain(hostB.peerAddress);
    expect(addressesA).not.toContain('172.17.0.1');
    expect(addressesA.some((address) => address!.startsWith('127.') || address === '::1')).toBe(false);
    // What one outpost alone can say: B's links have no container name on A's side, and back.
    expect(select(seriesA, 'container_tcp_established', { container: client, port: '18080' })[0]!.labels.remote_container).toBe('');
    expect(select(seriesB, 'container_tcp_established', { container: worker })[0]!.labels.remote_container).toBe('');
  });

  it('names the far end across hosts, in both directions, and never by a private address', async () => {
    const A = instanceA;
    const B = instanceB;
    // A's end of the short web calls is there only when a collection saw one open.
    const maybe = new Set([`outbound ${web}:18081 @${B}`]);
    const expected: [string, string, string[]][] = [
      [A, client, [`outbound ${srv}:18080 @${B}`, `outbound ${srv}:18082 @${B}`, `outbound ${srvPrivateAddress}:5432 @`]],
      [B, srv, [`inbound ${hostB.peerAddress}:8080 @${A}`]],
      [B, web, [`inbound ${hostB.peerAddress}:9000 @${A}`]],
      [B, worker, [`outbound ${api}:9000 @${A}`]],
      [A, api, [`inbound ${worker}:9000 @${B}`]],
    ];
    for (const [instance, container, links] of expected) {
      const recorded = await waitFor(
        `the recorded links of ${container}`,
        async () => {
          const found = await recordedLinks(instance, container);
          return links.every((l) => found.includes(l)) ? found : undefined;
        },
        60_000,
      ).catch(async () => recordedLinks(instance, container));
      expect(recorded.filter((l) => !maybe.has(l)).sort(), `${container} on ${instance}`).toEqual([...links].sort());
    }
    // The exporter's own series, with remote_container filled in and remote_instance.
    const named = await prometheus.query(`outpost:container_tcp_established:named{instance="${B}", container="${worker}"}`);
    expect(named.map((s) => s.metric)).toEqual([
      expect.objectContaining({
        direction: 'outbound',
        remote_address: await a.ip(api, a.name('routed')),
        port: '9000',
        remote_container: api,
        remote_instance: A,
      }),
    ]);
    // The 172.17 address is B's srv on B's private bridge: on A it names nobody.
    expect(await prometheus.query(`outpost:link:active{port="5432", remote_instance!=""}`)).toEqual([]);
    expect(await prometheus.query(`outpost:peer:container_address{remote_address="${srvPrivateAddress}"}`)).toEqual([]);
  });

  it("draws cross-host edges of the link map between the two hosts' nodes", async () => {
    const edges = (await prometheus.query('outpost:link_map:edge')).map((s) => `${s.metric.source} → ${s.metric.target} :${s.metric.port}`);
    expect(edges).toEqual(
      expect.arrayContaining([
        `${client}@${instanceA} → ${srv}@${instanceB} :18080`,
        `${client}@${instanceA} → ${srv}@${instanceB} :18082`,
        `${hostB.peerAddress} → ${web}@${instanceB} :9000`,
        `${worker}@${instanceB} → ${api}@${instanceA} :9000`,
        `${client}@${instanceA} → ${srvPrivateAddress} :5432`,
      ]),
    );
    const nodes = new Set((await prometheus.query('outpost:link_map:node')).map((s) => s.metric.id));
    for (const node of [`${srv}@${instanceB}`, `${api}@${instanceA}`, `${worker}@${instanceB}`]) expect(nodes).toContain(node);
  });

  it("allows a peer on another host by its name: A's outpost sees an address, Prometheus the name", async () => {
    // A alone: every link of the client to B's address is unexpected (it allows srv by name).
    const seriesA = await exporterA.scrape();
    expect(
      select(seriesA, 'container_tcp_unexpected_established', { container: client })
        .map((s) => s.labels.port)
        .sort(),
    ).toEqual(['18080', '18082']);
    expect(
      select(seriesA, 'outpost_policy_peer_allowed_info', { container: client }).map(
        (s) => `${s.labels.direction} ${s.labels.peer}:${s.labels.port}`,
      ),
    ).toEqual([`outbound ${srv}:18080`]);
    // After the rules: srv is allowed by name; web is not.
    const unexpected = await waitFor(
      'the unexpected links of the client',
      async () => {
        const found = (await prometheus.query(`outpost:link:unexpected{instance="${instanceA}", container="${client}"}`)).map(
          (s) => `${s.metric.peer}:${s.metric.port}`,
        );
        return found.includes(`${srv}:18082`) && !found.includes(`${srv}:18080`) ? found : undefined;
      },
      30_000,
    );
    expect(unexpected.filter((l) => l !== `${web}:18081`)).toEqual([`${srv}:18082`]);
    expect((await prometheus.query(`outpost:link:allowed_across_hosts{container="${client}"}`)).map((s) => s.metric.peer)).toEqual([srv]);
  });
});
