import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type Scenario, docker, kernelTcpInfo, namespaceCounter, pidOf, waitFor } from '../support/docker.js';
import { test } from '../support/lab.js';
import type { TestExporter } from '../support/exporter.js';
import { select, type Series } from '../support/exposition.js';
import type { SsInfo } from '../support/ssOutput.js';

const exec = promisify(execFile);

const BULK_BYTES = 5_000_000;
const SHORT_CONNECTIONS = 100;
const SHORT_BYTES = 10_000;
/** A server that reads each connection to its end and keeps nothing. */
const SINK = (port: number) => `nc -ll -p ${port} -e sh -c 'cat >/dev/null' &`;
const SOURCES = ['netlink', 'ebpf', 'procfs'] as const;
type SourceName = (typeof SOURCES)[number];

const sum = (series: readonly Series[]) => series.reduce((total, s) => total + s.value, 0);
const within = (value: number, expected: number, fraction: number) => Math.abs(value - expected) <= expected * fraction;

/**
 * Link health against the kernel's own figures (tcp_info through `ss -ti`, and nstat) in each
 * container's namespace: bytes of one long and many short connections, RTT of a link slowed by
 * tbf shaping on the client's interface (this kernel has no netem), retransmits of the same link
 * (tbf drops what overflows its queue), and connects that fail, by reason.
 */
describe('link health: bytes, RTT, retransmits and connect failures per link, as the kernel counts them', () => {
  let scenario: Scenario;
  const exporters = {} as Record<SourceName, TestExporter>;
  const c: Record<string, string> = {};
  let srvIp: string;
  const scrapeAll = async () => {
    const scraped = await Promise.all(SOURCES.map((s) => exporters[s].scrape()));
    return Object.fromEntries(SOURCES.map((s, i) => [s, scraped[i]!])) as Record<SourceName, Series[]>;
  };
  let afterBulk: Record<SourceName, Series[]>;
  let afterShort: Record<SourceName, Series[]>;
  let rttScrape: Record<SourceName, Series[]>;
  const ssAround: { client: SsInfo[][]; server: SsInfo[][] } = { client: [], server: [] };
  let retransScrape: Record<SourceName, Series[]>;
  let retransKernel: number;
  let ebpfFailures: Series[];

  test.beforeAll(async ({ lab }) => {
    scenario = lab.scenario('health');
    const net = await scenario.network('net', ['10.213.91.0/24']);
    c.srv = await scenario.run(
      'srv',
      ['--network', net],
      ['sh', '-c', `${SINK(7000)} ${SINK(7001)} ${SINK(7002)} ${SINK(9998)} sleep 100000`],
    );
    srvIp = await scenario.ip(c.srv, net);
    const srvPid = await pidOf(c.srv);
    // Port 9998 of the server drops every SYN: a connect there times out.
    await exec('nsenter', ['-t', String(srvPid), '-n', 'iptables', '-A', 'INPUT', '-p', 'tcp', '--dport', '9998', '-j', 'DROP']);
    for (const s of SOURCES) exporters[s] = await lab.exporter({ socketSource: s });
    await scrapeAll();

    // One connection that sends BULK_BYTES, then stays open.
    c.bulk = await scenario.run(
      'bulk',
      ['--network', net],
      ['sh', '-c', `(head -c ${BULK_BYTES} /dev/zero; sleep 100000) | nc ${srvIp} 7000`],
    );
    const bulkPid = await pidOf(c.bulk);
    await waitFor('the bulk bytes acknowledged', async () =>
      (await kernelTcpInfo(bulkPid)).some((i) => i.endpoints.endsWith(`:7000`) && i.bytesAcked > BULK_BYTES),
    );
    afterBulk = await scrapeAll();

    // SHORT_CONNECTIONS connections of SHORT_BYTES each, each closed as soon as it is sent.
    c.short = await scenario.run(
      'short',
      ['--network', net],
      [
        'sh',
        '-c',
        `for i in $(seq ${SHORT_CONNECTIONS}); do head -c ${SHORT_BYTES} /dev/zero | nc ${srvIp} 7001; done; echo done; sleep 100000`,
      ],
    );
    await waitFor('the short connections', async () => (await docker(['logs', c.short!])).includes('done'), 60_000);
    await new Promise((r) => setTimeout(r, 500));
    afterShort = await scrapeAll();

    // A link slowed and made lossy by tbf on the client's interface: at 4 Mbit/s with a 60 kB queue,
    // measured here: an RTT of about 24 ms (±5 %) under BBR, and drops when the queue overflows.
    c.slow = await scenario.run('slow', ['--network', net], ['sleep', '100000']);
    const slowPid = await pidOf(c.slow);
    await exec('nsenter', [
      '-t',
      String(slowPid),
      '-n',
      'tc',
      'qdisc',
      'add',
      'dev',
      'eth0',
      'root',
      'tbf',
      'rate',
      '4mbit',
      'burst',
      '3kb',
      'limit',
      '60kb',
    ]);
    await docker(['exec', '-d', c.slow, 'sh', '-c', `cat /dev/zero | nc ${srvIp} 7002`]);
    await new Promise((r) => setTimeout(r, 8_000));
    ssAround.client.push(await kernelTcpInfo(slowPid));
    ssAround.server.push(await kernelTcpInfo(srvPid));
    rttScrape = await scrapeAll();
    ssAround.client.push(await kernelTcpInfo(slowPid));
    ssAround.server.push(await kernelTcpInfo(srvPid));
    // Frozen, the sender sends nothing new; what it sent is acknowledged or retransmitted, then all is still.
    await docker(['pause', c.slow]);
    await new Promise((r) => setTimeout(r, 3_000));
    retransKernel = await namespaceCounter(slowPid, 'TcpRetransSegs');
    retransScrape = await scrapeAll();
    await docker(['unpause', c.slow]);

    // Connects that fail: refused (nobody listens on 9999) and timed out (9998 drops the SYNs; one
    // retry, so the kernel gives up after about 3 s).
    c.fails = await scenario.run('fails', ['--network', net], ['sleep', '100000']);
    await exec('nsenter', ['-t', String(await pidOf(c.fails)), '-n', 'sysctl', '-qw', 'net.ipv4.tcp_syn_retries=1']);
    await docker(['exec', c.fails, 'sh', '-c', `nc ${srvIp} 9999 </dev/null; nc ${srvIp} 9998 </dev/null; true`]);
    await new Promise((r) => setTimeout(r, 300));
    ebpfFailures = select(await exporters.ebpf.scrape(), 'container_tcp_connect_failures_total', { container: c.fails });
  }, 240_000);
  test.afterAll(({ lab }) => lab.close());

  const bytes = (series: Series[], name: string, labels: Record<string, string>) => sum(select(series, name, labels));

  it.each([['netlink'], ['ebpf']] as const)(
    '%s: the bulk bytes, sent by the client and received by the server, within 1 percent',
    (source) => {
      const sent = bytes(afterBulk[source], 'container_tcp_sent_bytes_total', { container: c.bulk!, direction: 'outbound', port: '7000' });
      const received = bytes(afterBulk[source], 'container_tcp_received_bytes_total', {
        container: c.srv!,
        direction: 'inbound',
        port: '7000',
        remote_container: c.bulk!,
      });
      console.log(`${source}: ${BULK_BYTES} bytes sent over one connection; sent_bytes ${sent}, received_bytes ${received}`);
      expect(within(sent, BULK_BYTES, 0.01), `sent ${sent}`).toBe(true);
      expect(within(received, BULK_BYTES, 0.01), `received ${received}`).toBe(true);
    },
  );

  it('ebpf: the bytes of 100 short connections, each closed before a scrape saw it, within 1 %', () => {
    const made = SHORT_CONNECTIONS * SHORT_BYTES;
    const sent = bytes(afterShort.ebpf, 'container_tcp_sent_bytes_total', { container: c.short!, direction: 'outbound', port: '7001' });
    const received = bytes(afterShort.ebpf, 'container_tcp_received_bytes_total', {
      container: c.srv!,
      direction: 'inbound',
      port: '7001',
      remote_container: c.short!,
    });
    console.log(`ebpf: ${made} bytes over ${SHORT_CONNECTIONS} short connections; sent_bytes ${sent}, received_bytes ${received}`);
    expect(within(sent, made, 0.01), `sent ${sent}`).toBe(true);
    expect(within(received, made, 0.01), `received ${received}`).toBe(true);
    // Counted once each, however many collections followed.
    expect(sum(select(afterShort.ebpf, 'container_tcp_connections_total', { container: c.short!, port: '7001' }))).toBe(SHORT_CONNECTIONS);
  });

  it('netlink: counts no more bytes than were sent, where connections closed between two scrapes (it sees open ones only)', () => {
    const sent = bytes(afterShort.netlink, 'container_tcp_sent_bytes_total', { container: c.short!, port: '7001' });
    console.log(`netlink: short connections' sent_bytes ${sent} of ${SHORT_CONNECTIONS * SHORT_BYTES}`);
    expect(sent).toBeLessThanOrEqual(SHORT_CONNECTIONS * SHORT_BYTES * 1.01);
  });

  it('procfs: has no figures (/proc/net/tcp holds none of them), and says so by its capabilities', () => {
    for (const name of ['container_tcp_sent_bytes_total', 'container_tcp_retransmits_total', 'container_tcp_rtt_seconds']) {
      expect(select(afterBulk.procfs, name)).toEqual([]);
    }
    const capabilities = select(afterBulk.procfs, 'outpost_source_capability_info').map((s) => s.labels.capability);
    expect(capabilities).not.toContain('socket_figures');
    expect(select(afterBulk.netlink, 'outpost_source_capability_info').map((s) => s.labels.capability)).toContain('socket_figures');
  });

  const ssRtt = (infos: SsInfo[][], port: string) =>
    infos.map((all) => all.find((i) => i.endpoints.split(' ').some((e) => e.endsWith(`:${port}`)))!.rttUs / 1e6);

  it.each([['netlink'], ['ebpf']] as const)(
    '%s: the RTT of the slowed link within 20 percent of what ss -ti says at each end; an unshaped one under 5 ms',
    (source) => {
      const rtt = (labels: Record<string, string>) => select(rttScrape[source], 'container_tcp_rtt_seconds', labels)[0]?.value;
      const client = rtt({ container: c.slow!, direction: 'outbound', port: '7002' });
      const server = rtt({ container: c.srv!, direction: 'inbound', port: '7002', remote_container: c.slow! });
      const [clientSs, serverSs] = [ssRtt(ssAround.client, '7002'), ssRtt(ssAround.server, '7002')];
      console.log(
        `${source}: slowed link rtt client ${client} (ss ${clientSs.join(' / ')}), server ${server} (ss ${serverSs.join(' / ')})`,
      );
      const near = (value: number | undefined, oracle: number[]) => value !== undefined && oracle.some((o) => within(value, o, 0.2));
      expect(clientSs[0]!, 'the shaping slowed the link').toBeGreaterThan(0.005);
      expect(near(client, clientSs), `client ${client}`).toBe(true);
      expect(near(server, serverSs), `server ${server}`).toBe(true);
      const unshaped = rtt({ container: c.bulk!, direction: 'outbound', port: '7000' });
      expect(unshaped).toBeDefined();
      expect(unshaped!).toBeLessThan(0.005);
    },
  );

  it.each([['netlink'], ['ebpf']] as const)(
    "%s: the lossy link's retransmits within 10 percent of the namespace's TcpRetransSegs",
    (source) => {
      const counted = sum(select(retransScrape[source], 'container_tcp_retransmits_total', { container: c.slow! }));
      console.log(`${source}: retransmits ${counted}, TcpRetransSegs ${retransKernel}`);
      expect(retransKernel).toBeGreaterThan(0);
      expect(within(counted, retransKernel, 0.1), `${counted} of ${retransKernel}`).toBe(true);
    },
  );

  it('ebpf: a connect refused and one timed out, each under its reason; the connect time of the outbound links', () => {
    const failures = (reason: string, port: string) =>
      sum(ebpfFailures.filter((s) => s.labels.reason === reason && s.labels.port === port && s.labels.remote_address === srvIp));
    expect(failures('refused', '9999')).toBe(1);
    expect(failures('timeout', '9998')).toBe(1);
    expect(sum(ebpfFailures)).toBe(2);
    const connect = sum(select(afterShort.ebpf, 'container_tcp_connect_seconds_total', { container: c.short!, port: '7001' }));
    // 100 connects on one host's bridge: each well under a millisecond, none 0.
    expect(connect).toBeGreaterThan(0);
    expect(connect / SHORT_CONNECTIONS).toBeLessThan(0.005);
    expect(select(afterShort.ebpf, 'container_tcp_connect_seconds_total', { direction: 'inbound' })).toEqual([]);
  });
});
