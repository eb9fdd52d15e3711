import { describe, expect, it } from 'vitest';
import { kernelSockets, pidOf, waitFor, type Scenario } from '../support/docker.js';
import type { TestExporter } from '../support/exporter.js';
import { test } from '../support/lab.js';
import { establishedOf, expectMatchesKernel, listeningOf, withoutDockerDns } from '../support/kernelView.js';
import type { Series } from '../support/exposition.js';

/**
 * One server and three clients with 1, 2 and 3 connections on an internal network: every
 * series exact, and equal to the kernel's view.
 */
describe('bridge network: one server, three clients', () => {
  let scenario: Scenario;
  let exporter: TestExporter;
  let net: string;
  let server: string;
  const clients: string[] = [];
  let series: Series[];

  test.beforeAll(async ({ lab }) => {
    scenario = lab.scenario('bridge');
    net = await scenario.network('net', ['10.213.11.0/24']);
    server = await scenario.run('server', ['--network', net], ['nc', '-ll', '-p', '8080', '-e', 'cat']);
    for (const n of [1, 2, 3]) {
      const loop = Array.from({ length: n }, () => `sleep 100000 | nc ${server} 8080 &`).join(' ');
      clients.push(await scenario.run(`client${n}`, ['--network', net], ['sh', '-c', `${loop} wait`]));
    }
    const serverPid = await pidOf(server);
    await waitFor(
      'six connections on the server',
      async () => (await kernelSockets(serverPid)).filter((s) => s.state === 'established').length === 6,
    );
    exporter = await lab.exporter();
    series = await exporter.scrape();
  });

  it('reports the server listening and each client inbound, by name', async () => {
    expect(listeningOf(series, server)).toEqual(['[::]:8080 => 1']);
    const expected = await Promise.all(
      clients.map(async (client, i) => `inbound ${await scenario.ip(client, net)}:8080 ${client} => ${i + 1}`),
    );
    expect(establishedOf(series, server)).toEqual(expected.sort());
  });

  it('reports each client outbound to the server, by name, with its number of connections', async () => {
    const serverIp = await scenario.ip(server, net);
    for (const [i, client] of clients.entries()) {
      expect(listeningOf(series, client)).toEqual([]);
      expect(establishedOf(series, client)).toEqual([`outbound ${serverIp}:8080 ${server} => ${i + 1}`]);
    }
  });

  it('equals the kernel view (nsenter ss) for every container', async () => {
    for (const container of [server, ...clients]) {
      expectMatchesKernel(series, [container], withoutDockerDns(await kernelSockets(await pidOf(container))));
    }
  });

  it('labels every container with its image and network in the info metrics', async () => {
    const info = series.filter((s) => s.name === 'outpost_container_info' && s.labels.container?.startsWith(scenario.prefix));
    expect(info.map((s) => `${s.labels.container} ${s.labels.image} ${s.labels.network_mode}`).sort()).toEqual(
      [server, ...clients].map((c) => `${c} outpost-test/busybox:1 ${net}`).sort(),
    );
    const serverIp = await scenario.ip(server, net);
    expect(series.filter((s) => s.name === 'outpost_container_address_info' && s.labels.container === server).map((s) => s.labels)).toEqual(
      [{ container: server, network: net, address: serverIp, scope: 'host' }],
    );
    expect(series.find((s) => s.name === 'outpost_up')?.value).toBe(1);
  });

  it('serves scrapes that arrive during a collection from that one collection', async () => {
    const durations = (text: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith('outpost_collector_duration_seconds'))
        .join('\n');
    const concurrent = await Promise.all(Array.from({ length: 5 }, () => exporter.fetchText('/metrics')));
    const first = durations(concurrent[0]!.text);
    expect(first).toContain('collector="sockets"');
    // Stage durations are measured to the nanosecond: equal values mean one shared collection.
    for (const { text } of concurrent) expect(durations(text)).toBe(first);
    const later = await exporter.fetchText('/metrics');
    expect(durations(later.text)).not.toBe(first);
  });

  it('serves the same collection as the ancestor-compatible /connections JSON', async () => {
    const { status, text } = await exporter.fetchText('/connections');
    expect(status).toBe(200);
    const entries = JSON.parse(text) as {
      name: string;
      artefact: string;
      listening: { address: string; port: number }[];
      established: { address: string; port: number; direction: string; remote_container: string; count: number }[];
    }[];
    const byName = new Map(entries.map((e) => [e.name, e]));
    const serverEntry = byName.get(server)!;
    expect(serverEntry.artefact).toBe('outpost-test/busybox:1');
    expect(serverEntry.listening).toEqual([{ address: '::', port: 8080, count: 1 }]);
    expect(serverEntry.established.map((e) => `${e.remote_container}:${e.count}`).sort()).toEqual(
      clients.map((c, i) => `${c}:${i + 1}`).sort(),
    );
    const serverIp = await scenario.ip(server, net);
    // Counted when first seen, collections ago: none of the three is new now, all three counted.
    expect(byName.get(clients[2]!)!.established).toEqual([
      {
        address: serverIp,
        port: 8080,
        direction: 'outbound',
        remote_container: server,
        count: 3,
        new_connections: 0,
        connections_total: 3,
        // Idle since their handshake: the kernel counts each one's SYN as a byte acked, nothing else.
        sent_bytes_total: 3,
        received_bytes_total: 0,
        retransmits_total: 0,
        rtt_seconds: expect.any(Number) as number,
        names: [],
      },
    ]);
  });
});
