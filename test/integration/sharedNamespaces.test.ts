import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { type Scenario, kernelSockets, pidOf, socketsHeldBy, waitFor } from '../support/docker.js';
import { test } from '../support/lab.js';
import type { TestExporter } from '../support/exporter.js';
import type { Series } from '../support/exposition.js';
import { establishedOf, expectMatchesKernel, listeningOf, withoutDockerDns } from '../support/kernelView.js';

const HOST_PORT = 39091;

describe('host network: a container in the host namespace', () => {
  let scenario: Scenario;
  let exporter: TestExporter;
  let hostnet: string;
  let hostClient: Socket;
  let series: Series[];

  test.beforeAll(async ({ lab }) => {
    scenario = lab.scenario('hostnet');
    // Its own listener on loopback, and one connection to it from inside the container.
    hostnet = await scenario.run(
      'app',
      ['--network', 'host'],
      ['sh', '-c', `nc -ll -p ${HOST_PORT} -e cat & sleep 0.5; sleep 100000 | nc 127.0.0.1 ${HOST_PORT} & wait`],
    );
    const pid = await pidOf(hostnet);
    await waitFor(
      'the container connected to itself',
      async () => (await socketsHeldBy(hostnet, pid)).filter((s) => s.state === 'established').length === 2,
    );
    // A process of the host (this test) connected to the container's listener.
    hostClient = connect({ host: '127.0.0.1', port: HOST_PORT });
    lab.defer(() => hostClient.destroy());
    await new Promise((resolve) => hostClient.once('connect', resolve));
    await waitFor(
      'the host connection accepted',
      async () => (await socketsHeldBy(hostnet, pid)).filter((s) => s.state === 'established').length === 3,
    );
    exporter = await lab.exporter();
    series = await exporter.scrape();
  });

  // What this describe made goes before the next one starts.
  test.afterAll(async ({ lab }) => {
    await lab.close();
  });

  it('reports its own listener and connections, naming itself and the host as peers', () => {
    expect(listeningOf(series, hostnet)).toEqual([`[::]:${HOST_PORT} => 1`]);
    expect(establishedOf(series, hostnet)).toEqual([
      `inbound 127.0.0.1:${HOST_PORT} host => 1`,
      `inbound 127.0.0.1:${HOST_PORT} ${hostnet} => 1`,
      `outbound 127.0.0.1:${HOST_PORT} ${hostnet} => 1`,
    ]);
  });

  it("reports none of the host's other sockets (this exporter's own listener among them)", async () => {
    const port = Number(new URL(exporter.url).port);
    const all = series.filter((s) => s.labels.container === hostnet);
    expect(all.some((s) => s.labels.port === String(port))).toBe(false);
    // The host namespace has more listeners than the container's one.
    const hostListeners = (await kernelSockets(await pidOf(hostnet))).filter((s) => s.state === 'listen');
    expect(hostListeners.length).toBeGreaterThan(1);
  });

  it('equals the kernel view of the sockets its processes hold', async () => {
    expectMatchesKernel(series, [hostnet], await socketsHeldBy(hostnet, await pidOf(hostnet)));
  });
});

describe('--network container:<server>: a sidecar with its own connection', () => {
  let scenario: Scenario;
  let exporter: TestExporter;
  let net: string;
  let server: string;
  let sidecar: string;
  let third: string;
  let client: string;
  let series: Series[];

  test.beforeAll(async ({ lab }) => {
    scenario = lab.scenario('sidecar');
    net = await scenario.network('net', ['10.213.12.0/24']);
    server = await scenario.run('server', ['--network', net], ['nc', '-ll', '-p', '8080', '-e', 'cat']);
    third = await scenario.run('third', ['--network', net], ['nc', '-ll', '-p', '9090', '-e', 'cat']);
    client = await scenario.run('client', ['--network', net], ['sh', '-c', `sleep 100000 | nc ${server} 8080`]);
    const thirdIp = await scenario.ip(third, net);
    sidecar = await scenario.run('sidecar', ['--network', `container:${server}`], ['sh', '-c', `sleep 100000 | nc ${thirdIp} 9090`]);
    const pid = await pidOf(server);
    await waitFor(
      'both connections in the shared namespace',
      async () => (await kernelSockets(pid)).filter((s) => s.state === 'established').length === 2,
    );
    exporter = await lab.exporter();
    series = await exporter.scrape();
  });

  // What this describe made goes before the next one starts.
  test.afterAll(async ({ lab }) => {
    await lab.close();
  });

  it('gives the server only its own listener and inbound connection', async () => {
    expect(listeningOf(series, server)).toEqual(['[::]:8080 => 1']);
    expect(establishedOf(series, server)).toEqual([`inbound ${await scenario.ip(client, net)}:8080 ${client} => 1`]);
  });

  it('gives the sidecar only its own outbound connection', async () => {
    expect(listeningOf(series, sidecar)).toEqual([]);
    expect(establishedOf(series, sidecar)).toEqual([`outbound ${await scenario.ip(third, net)}:9090 ${third} => 1`]);
  });

  it('names the sidecar, not the owner of the shared IP, as the peer of the third container', async () => {
    expect(establishedOf(series, third)).toEqual([`inbound ${await scenario.ip(server, net)}:9090 ${sidecar} => 1`]);
  });

  it('equals the kernel view: each container its held sockets, both together the whole namespace', async () => {
    const pid = await pidOf(server);
    expectMatchesKernel(series, [sidecar], await socketsHeldBy(sidecar, pid));
    // The server also holds its listener; TIME_WAIT and the like have no holder and are its own.
    expectMatchesKernel(series, [server, sidecar], withoutDockerDns(await kernelSockets(pid)));
    expectMatchesKernel(series, [third], withoutDockerDns(await kernelSockets(await pidOf(third))));
  });
});
