import { describe, expect, it } from 'vitest';
import { type Scenario, docker, kernelSockets, pidOf, socketsHeldBy, waitFor } from '../support/docker.js';
import { test } from '../support/lab.js';
import type { TestExporter } from '../support/exporter.js';
import { select, type Series } from '../support/exposition.js';
import { establishedOf, expectMatchesKernel, listeningOf, withoutDockerDns } from '../support/kernelView.js';

const PUBLISHED_PORT = 39092;

/**
 * Addresses: a container on two networks, IPv6-only listeners, and a connection through a
 * published port on a host address.
 */
describe('addresses: two networks, IPv6 only, a published port', () => {
  let scenario: Scenario;
  let exporter: TestExporter;
  let netA: string;
  let netB: string;
  let netPub: string;
  let multi: string;
  let clientA: string;
  let clientB: string;
  let v6: string;
  let v6Client: string;
  let publisher: string;
  let pubClient: string;
  let series: Series[];
  const v6Address = 'fd00:213:14::10';

  test.beforeAll(async ({ lab }) => {
    scenario = lab.scenario('addr');
    netA = await scenario.network('a', ['10.213.13.0/24']);
    netB = await scenario.network('b', ['10.213.14.0/24', 'fd00:213:14::/64']);

    multi = await scenario.run('multi', ['--network', netA], ['nc', '-ll', '-p', '8080', '-e', 'cat']);
    await docker(['network', 'connect', netB, multi]);
    clientA = await scenario.run('client-a', ['--network', netA], ['sh', '-c', `sleep 100000 | nc ${await scenario.ip(multi, netA)} 8080`]);
    clientB = await scenario.run('client-b', ['--network', netB], ['sh', '-c', `sleep 100000 | nc ${await scenario.ip(multi, netB)} 8080`]);

    // IPv6 only: a wildcard listener made v6-only by the namespace's sysctl, and one bound to
    // the container's IPv6 address.
    v6 = await scenario.run(
      'v6',
      ['--network', netB, '--ip6', v6Address, '--sysctl', 'net.ipv6.bindv6only=1'],
      ['sh', '-c', `httpd -f -p [${v6Address}]:7071 & nc -ll -p 8081 -e cat`],
    );
    v6Client = await scenario.run('v6-client', ['--network', netB], ['sh', '-c', `sleep 100000 | nc ${v6Address} 8081`]);

    // A published port, reached from a host-network container through the host's loopback.
    // Publishing needs a non-internal network; it has no masquerading, and the only traffic is
    // loopback → Docker's proxy → the test's own container.
    netPub = await scenario.network('pub', ['10.213.15.0/24'], {
      internal: false,
      extra: ['-o', 'com.docker.network.bridge.enable_ip_masquerade=false'],
    });
    publisher = await scenario.run(
      'publisher',
      ['--network', netPub, '-p', `127.0.0.1:${PUBLISHED_PORT}:8080`],
      ['nc', '-ll', '-p', '8080', '-e', 'cat'],
    );
    await waitFor('the published port', async () =>
      (await kernelSockets(process.pid)).some((s) => s.state === 'listen' && s.localPort === PUBLISHED_PORT),
    );
    pubClient = await scenario.run('pub-client', ['--network', 'host'], ['sh', '-c', `sleep 100000 | nc 127.0.0.1 ${PUBLISHED_PORT}`]);

    const established = async (c: string) => (await kernelSockets(await pidOf(c))).filter((s) => s.state === 'established').length;
    await waitFor('two connections on the two-network container', async () => (await established(multi)) === 2);
    await waitFor('the IPv6 connection', async () => (await established(v6)) === 1);
    await waitFor('the published-port connection', async () => (await established(publisher)) === 1);
    exporter = await lab.exporter();
    series = await exporter.scrape();
  });

  it('names clients on both networks of a container on two networks, and lists both its addresses', async () => {
    expect(establishedOf(series, multi)).toEqual(
      [
        `inbound ${await scenario.ip(clientA, netA)}:8080 ${clientA} => 1`,
        `inbound ${await scenario.ip(clientB, netB)}:8080 ${clientB} => 1`,
      ].sort(),
    );
    const addresses = select(series, 'outpost_container_address_info', { container: multi }).map(
      (s) => `${s.labels.network} ${s.labels.address}`,
    );
    expect(addresses.sort()).toEqual(
      [
        `${netA} ${await scenario.ip(multi, netA)}`,
        `${netB} ${await scenario.ip(multi, netB)}`,
        `${netB} ${await scenario.ip(multi, netB, 6)}`,
      ].sort(),
    );
  });

  it('reports IPv6-only listeners and an IPv6 connection in IPv6 text form', async () => {
    expect(listeningOf(series, v6)).toEqual([`[::]:8081 => 1`, `[${v6Address}]:7071 => 1`].sort());
    const clientV6 = await scenario.ip(v6Client, netB, 6);
    expect(clientV6).toMatch(/^fd00:213:14::/);
    expect(establishedOf(series, v6)).toEqual([`inbound [${clientV6}]:8081 ${v6Client} => 1`]);
    expect(establishedOf(series, v6Client)).toEqual([`outbound [${v6Address}]:8081 ${v6} => 1`]);
    // The kernel agrees the wildcard listener takes IPv6 only.
    const kernel = await kernelSockets(await pidOf(v6));
    expect(kernel.filter((s) => s.state === 'listen' && s.localPort === 8081).map((s) => s.localAddress)).toEqual(['::']);
  });

  it('resolves a connection to a host address and published port to the publishing container', () => {
    expect(establishedOf(series, pubClient)).toEqual([`outbound 127.0.0.1:${PUBLISHED_PORT} ${publisher} => 1`]);
    // The publisher sees Docker's proxy, a process of the host, on its network's gateway.
    expect(establishedOf(series, publisher)).toEqual(['inbound 10.213.15.1:8080 host => 1']);
  });

  it('equals the kernel view for every container', async () => {
    for (const c of [multi, clientA, clientB, v6, v6Client, publisher]) {
      expectMatchesKernel(series, [c], withoutDockerDns(await kernelSockets(await pidOf(c))));
    }
    expectMatchesKernel(series, [pubClient], await socketsHeldBy(pubClient, await pidOf(pubClient)));
  });
});
