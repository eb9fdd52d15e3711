import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { type Scenario, docker } from '../support/docker.js';
import { test } from '../support/lab.js';
import type { TestExporter } from '../support/exporter.js';
import { select, type Series } from '../support/exposition.js';

let scenario: Scenario;
const TIMES = 12;

/**
 * Connections that begin and end between two scrapes, each way the kernel ends one: closed by a
 * peer off this host (its TIME_WAIT is not here), reset by it (SO_LINGER 0), and refused (SYN_SENT
 * → CLOSE). The peer "off the host" is a server of this process on the gateway of the test's own
 * internal network. The ebpf source counts every one exactly; netlink, for comparison, sees a
 * closed connection only if a scrape happens to fall within its life.
 */
describe('connections seen as they happen (ebpf source)', () => {
  let ebpf: TestExporter;
  let netlink: TestExporter;
  let client: string;
  let server: string;
  let gateway: string;
  const hostServers: Server[] = [];
  const ports: Record<'closing' | 'resetting', number> = { closing: 0, resetting: 0 };

  /**
   * A server of this process on the gateway that ends each connection at once, first. On a port
   * below the ephemeral range, which outpost would fold into "~ephemeral"; the address is the
   * test's own.
   */
  async function hostServer(port: number, end: (socket: Socket) => void): Promise<number> {
    const s = createServer((socket) => {
      socket.on('error', () => undefined);
      end(socket);
    });
    hostServers.push(s);
    s.listen(port, gateway);
    await once(s, 'listening');
    return (s.address() as { port: number }).port;
  }

  const totals = (series: Series[], name: string, labels: Record<string, string>) =>
    select(series, name, labels).reduce((sum, s) => sum + s.value, 0);

  test.beforeAll(async ({ lab }) => {
    scenario = lab.scenario('events');
    lab.defer(() => {
      for (const s of hostServers) s.close();
    });
    const net = await scenario.network('net', ['10.213.99.0/24']);
    gateway = '10.213.99.1';
    server = await scenario.run('server', ['--network', net], ['sleep', '100000']);
    client = await scenario.run('client', ['--network', net], ['sleep', '100000']);
    ports.closing = await hostServer(9401, (socket) => socket.end());
    ports.resetting = await hostServer(9402, (socket) => socket.resetAndDestroy());
    ebpf = await lab.exporter({ socketSource: 'ebpf' });
    netlink = await lab.exporter({ socketSource: 'netlink' });
    await Promise.all([ebpf.scrape(), netlink.scrape()]);
  });

  /** Runs `command` TIMES in the client, between two scrapes; the second scrape of each exporter. */
  async function between(command: string): Promise<{ ebpf: Series[]; netlink: Series[] }> {
    await docker(['exec', client, 'sh', '-c', `i=0; while [ $i -lt ${TIMES} ]; do ${command}; i=$((i+1)); done; true`]);
    const [e, n] = await Promise.all([ebpf.scrape(), netlink.scrape()]);
    return { ebpf: e, netlink: n };
  }

  it('counts every connection an off-host peer closed, and every one it reset, on the client', async () => {
    for (const [way, port] of Object.entries(ports)) {
      const labels = { container: client, direction: 'outbound', port: String(port), remote_address: gateway };
      const { ebpf: e, netlink: n } = await between(`nc ${gateway} ${port} </dev/null >/dev/null 2>&1`);
      console.log(
        `${way}: ebpf counted ${totals(e, 'container_tcp_connections_total', labels)}, netlink ${totals(n, 'container_tcp_connections_total', labels)}, of ${TIMES}`,
      );
      expect(totals(e, 'container_tcp_connections_total', labels), way).toBe(TIMES);
      // None of them failed to connect.
      expect(totals(e, 'container_tcp_connect_failures_total', { container: client }), way).toBe(0);
    }
  });

  it('counts every refused connect as a failure, naming the container it was aimed at, and as no connection', async () => {
    const labels = { container: client, direction: 'outbound', port: '9999', remote_container: server };
    const { ebpf: e, netlink: n } = await between(`nc ${await scenario.ip(server, scenario.name('net'))} 9999 </dev/null >/dev/null 2>&1`);
    expect(totals(e, 'container_tcp_connect_failures_total', labels)).toBe(TIMES);
    expect(totals(e, 'container_tcp_connect_failures_total', { container: client })).toBe(TIMES);
    expect(totals(e, 'container_tcp_connections_total', { port: '9999' })).toBe(0);
    // The server's side never had a socket: nothing is counted for it.
    expect(select(e, 'container_tcp_connect_failures_total', { container: server })).toEqual([]);
    // Only a source with events sees them.
    expect(select(n, 'container_tcp_connect_failures_total')).toEqual([]);
  });

  it('reports what it lost, by reason: nothing here, where every count above was exact', async () => {
    const [e, n] = await Promise.all([ebpf.scrape(), netlink.scrape()]);
    const lost = select(e, 'outpost_source_records_lost_total')
      .map((s) => `${s.labels.reason} ${s.value}`)
      .sort();
    expect(lost).toEqual(['queue_full 0', 'ring_buffer_full 0', 'state_changes_skipped 0', 'tracked_map_full 0']);
    expect(select(n, 'outpost_source_records_lost_total')).toEqual([]);
  });
});
