import { describe, expect, it } from 'vitest';
import { installConnstorm } from '../support/connstorm.js';
import { docker, kernelSockets, namespaceCounter, pidOf, waitFor } from '../support/docker.js';
import { test } from '../support/lab.js';
import { select } from '../support/exposition.js';

const RATE = 600;
const SECONDS = 15;

/**
 * Connections shorter than a millisecond, 600 a second for 15 s: the client connects and closes
 * at once, the server accepts and closes. The two ends of such a connection are often listed one
 * read apart (the server's end, then the client's TIME_WAIT): with the ebpf source each end still
 * counts once, at its own container (60 in 9,000 were missing at the client before).
 */
describe('connections shorter than a millisecond, counted at both ends (ebpf)', () => {
  const counted = { client: 0, server: 0 };
  const kernel = { opened: 0, accepted: 0, established: 0 };

  test.beforeAll(async ({ lab }) => {
    const scenario = lab.scenario('submillisecond');
    const net = await scenario.network('net', ['10.213.35.0/24']);
    const server = await scenario.run('server', ['--network', net], ['sleep', '100000']);
    const client = await scenario.run('client', ['--network', net], ['sleep', '100000']);
    await installConnstorm([server, client]);
    await docker(['exec', '-d', server, '/bin/connstorm', 'serve', '8080']);
    const [serverPid, clientPid] = [await pidOf(server), await pidOf(client)];
    await waitFor('the server to listen', async () =>
      (await kernelSockets(serverPid)).some((s) => s.state === 'listen' && s.localPort === 8080),
    );
    const exporter = await lab.exporter({ socketSource: 'ebpf' });
    const total = async (container: string) =>
      select(await exporter.scrape(), 'container_tcp_connections_total', { container }).reduce((sum, s) => sum + s.value, 0);
    const before = { client: await total(client), server: await total(server) };
    const opens = await namespaceCounter(clientPid, 'TcpActiveOpens');
    const accepts = await namespaceCounter(serverPid, 'TcpPassiveOpens');
    const made = docker([
      'exec',
      client,
      '/bin/connstorm',
      'connect',
      await scenario.ip(server, net),
      '8080',
      String(RATE),
      String(SECONDS),
    ]);
    const started = Date.now();
    while (Date.now() - started < (SECONDS + 1) * 1000) {
      await exporter.scrape(); // as Prometheus would, every second
      await new Promise((r) => setTimeout(r, 1000));
    }
    kernel.established = Number(await made);
    counted.client = (await total(client)) - before.client;
    counted.server = (await total(server)) - before.server;
    kernel.opened = (await namespaceCounter(clientPid, 'TcpActiveOpens')) - opens;
    kernel.accepted = (await namespaceCounter(serverPid, 'TcpPassiveOpens')) - accepts;
    console.info(
      `sub-millisecond: ${kernel.opened} opened, ${kernel.accepted} accepted, counted ${counted.client} at the client, ${counted.server} at the server`,
    );
  }, 120_000);

  it('counts each one once at the client, as the kernel opened them', () => {
    expect(kernel.opened).toBeGreaterThan(RATE * SECONDS * 0.9);
    expect(kernel.established).toBe(kernel.opened);
    expect(counted.client).toBe(kernel.opened);
  });

  it('counts each one once at the server, as the kernel accepted them', () => {
    expect(kernel.accepted).toBe(kernel.opened);
    expect(counted.server).toBe(kernel.accepted);
  });
});
