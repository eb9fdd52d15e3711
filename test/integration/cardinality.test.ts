import { spawn, type ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { type Scenario, docker, kernelSockets, pidOf, waitFor } from '../support/docker.js';
import { test } from '../support/lab.js';
import type { TestExporter } from '../support/exporter.js';
import { select, type Series } from '../support/exposition.js';

const CLIENTS = 300;
const BUDGET = 50;

/** 300 source addresses in 10.213.61.1–254 and 10.213.60.100–145, clear of what Docker assigns. */
const sourceAddress = (i: number) => (i < 254 ? `10.213.61.${i + 1}` : `10.213.60.${100 + i - 254}`);

/**
 * One server with clients from 300 distinct addresses: real sockets, from one client container
 * given 300 addresses on an internal network.
 */
describe('cardinality: a server with clients from 300 addresses and a budget of 50', () => {
  let scenario: Scenario;
  let exporter: TestExporter;
  let server: string;
  let client: string;
  let connector: ChildProcess;
  let series: Series[];

  test.beforeAll(async ({ lab }) => {
    scenario = lab.scenario('cardinality');
    const net = await scenario.network('net', ['10.213.60.0/23']);
    server = await scenario.run('server', ['--network', net], ['nc', '-ll', '-p', '8080', '-e', 'cat']);
    client = await scenario.run('client', ['--network', net, '--cap-add', 'NET_ADMIN'], ['sleep', '100000']);
    const addAll = Array.from({ length: CLIENTS }, (_, i) => `ip addr add ${sourceAddress(i)}/23 dev eth0`).join(' && ');
    await docker(['exec', client, 'sh', '-c', addAll]);
    const serverIp = await scenario.ip(server, net);
    // A node process inside the client's namespace opens one connection from each address, one
    // after another: busybox nc listens with a backlog of 2 and forks for each client.
    const script = `
      const net = require('node:net');
      const connect = (localAddress) => new Promise((resolve, reject) => {
        const s = net.connect({ host: '${serverIp}', port: 8080, localAddress }, () => resolve(s));
        s.on('error', reject);
      });
      (async () => {
        for (const localAddress of JSON.parse(process.argv[1])) await connect(localAddress);
        console.log('ready');
      })().catch((e) => { console.error(e.message); process.exit(1); });`;
    const addresses = JSON.stringify(Array.from({ length: CLIENTS }, (_, i) => sourceAddress(i)));
    connector = spawn('nsenter', ['-t', String(await pidOf(client)), '-n', process.execPath, '-e', script, addresses], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    lab.defer(() => connector.kill());
    await new Promise<void>((resolve, reject) => {
      connector.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) resolve();
      });
      connector.on('exit', (code) => {
        reject(new Error(`connector exited with ${code}`));
      });
    });
    const serverPid = await pidOf(server);
    await waitFor(
      '300 connections accepted',
      async () => (await kernelSockets(serverPid)).filter((s) => s.state === 'established').length === CLIENTS,
    );
    exporter = await lab.exporter({ maxSeriesPerContainer: BUDGET });
    series = await exporter.scrape();
  }, 120_000);

  it('gives the server exactly 51 established series and a folded count of 250', () => {
    const established = select(series, 'container_tcp_established', { container: server });
    expect(established).toHaveLength(BUDGET + 1);
    expect(select(series, 'outpost_established_folded_groups', { container: server })[0]?.value).toBe(CLIENTS - BUDGET);
    const other = established.filter((s) => s.labels.remote_address === '~other');
    expect(other.map((s) => ({ ...s.labels, value: s.value }))).toEqual([
      expect.objectContaining({ direction: 'inbound', port: '8080', remote_container: client, value: CLIENTS - BUDGET }),
    ]);
    // Every connection is still counted once.
    expect(established.reduce((sum, s) => sum + s.value, 0)).toBe(CLIENTS);
    for (const s of established.filter((s) => s.labels.remote_address !== '~other')) {
      expect(s.labels.remote_address).toMatch(/^10\.213\.6[01]\.\d+$/);
      expect(s.labels.remote_container).toBe(client);
    }
  });

  it('gives the client one series for its 300 connections to the server, nothing folded', () => {
    expect(
      select(series, 'container_tcp_established', { container: client }).map(
        (s) => `${s.labels.remote_container}:${s.labels.port}=${s.value}`,
      ),
    ).toEqual([`${server}:8080=${CLIENTS}`]);
    expect(select(series, 'outpost_established_folded_groups', { container: client })[0]?.value).toBe(0);
  });
});
