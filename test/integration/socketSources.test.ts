import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDockerClient, parseDockerHost } from '../../src/inventory/dockerClient.js';
import { createLogger } from '../../src/base/log.js';
import { defaultBpfObjectPath, loadBpfAddon } from '../../src/sockets/bpfAddon.js';
import { EbpfSocketSource } from '../../src/sockets/ebpfSource.js';
import { ExecSocketSource } from '../../src/sockets/execSource.js';
import { NetlinkSocketSource } from '../../src/sockets/netlinkSource.js';
import { ProcfsSocketSource } from '../../src/sockets/procfsSource.js';
import { loadSockDiagAddon, type SockDiagAddon } from '../../src/sockets/sockDiagAddon.js';
import { chooseSocketSource, type SourceChoice } from '../../src/sockets/socketSourceChoice.js';
import type { TcpSocket } from '../../src/sockets/tcpSocket.js';
import { type Scenario, docker as dockerCli, kernelSockets, pidOf, waitFor } from '../support/docker.js';
import { test } from '../support/lab.js';
import { startTestExporter } from '../support/exporter.js';
import { parseExposition, select, type Series } from '../support/exposition.js';
import { freePort } from '../support/net.js';
import { objectRefusing } from '../support/bpfVariant.js';
import { EVERY_EBPF_CAPABILITY } from '../support/ebpfCapabilities.js';

const MAIN = new URL('../../dist/main.js', import.meta.url).pathname;
const docker = createDockerClient(parseDockerHost(process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock')!);

/** One comparable line per socket, with its inode, sorted. */
function keys(sockets: readonly TcpSocket[]): string[] {
  return sockets.map((s) => `${s.state} ${s.localAddress}:${s.localPort} ${s.remoteAddress}:${s.remotePort} ino=${s.inode}`).sort();
}

let scenario: Scenario;
let server: string;
let client: string;
let sidecar: string;
let hostPort: number;
let serverV4: string;
let ebpf: EbpfSocketSource;

// Loaded before the scenario starts, as at outpost's start: it lists what the walk and the state
// changes since then show.
test.beforeAll(({ lab }) => {
  const addon = loadBpfAddon();
  // Built by npm's install script here (libbpf-dev is installed): a missing one is a failure, not a skip.
  if (addon instanceof Error) throw addon;
  ebpf = new EbpfSocketSource({ addon, handle: addon.load(defaultBpfObjectPath()), procfsPath: '/proc' });
  lab.defer(() => {
    ebpf.close();
  });
});

/** The sockets the ebpf source lists in the network namespace of `pid`. */
async function ebpfSockets(pid: number): Promise<{ sockets: TcpSocket[]; parseErrors: number }> {
  const id = readlinkSync(`/proc/${pid}/ns/net`);
  const result = await ebpf.read([{ id, host: pid === process.pid, containers: [] }]);
  expect(result.failed).toEqual([]);
  return result.read[0]!;
}

test.beforeAll(async ({ lab }) => {
  scenario = lab.scenario('sources');
  const net = await scenario.network('net', ['10.213.28.0/24', 'fd00:213:28::/64']);
  server = await scenario.run(
    'server',
    ['--network', net],
    ['sh', '-c', 'httpd -f -p 127.0.0.1:6060 & httpd -f -p [::1]:7070 & nc -ll -p 8080 -e cat'],
  );
  // The sidecar shares the server's namespace: both sources must read it once, the same way.
  sidecar = await scenario.run('sidecar', ['--network', `container:${server}`], ['sh', '-c', 'sleep 1; sleep 100000 | nc 127.0.0.1 8080']);
  const v4 = await scenario.ip(server, net);
  serverV4 = v4;
  const v6 = await scenario.ip(server, net, 6);
  client = await scenario.run(
    'client',
    ['--network', net],
    [
      'sh',
      '-c',
      `sleep 1; sleep 100000 | nc ${v4} 8080 & sleep 0.5; sleep 100000 | nc ${v6} 8080 & sleep 0.5; sleep 100000 | nc ${v4} 8080`,
    ],
  );
  // On the host's network (this process's: pid 1 may be out of reach in a sandbox): a listener on loopback and a connection to it, both ends in the host's namespace.
  hostPort = await freePort();
  await scenario.run(
    'hostnet',
    ['--network', 'host'],
    ['sh', '-c', `httpd -f -p 127.0.0.1:${hostPort} & sleep 1; sleep 100000 | nc 127.0.0.1 ${hostPort}`],
  );
  const serverPid = await pidOf(server);
  await waitFor(
    '5 connections in the server namespace',
    async () => (await kernelSockets(serverPid)).filter((s) => s.state === 'established').length === 5,
  );
  await waitFor(
    'the connection on the host network',
    async () =>
      (await kernelSockets(process.pid)).filter((s) => s.state === 'established' && (s.localPort === hostPort || s.remotePort === hostPort))
        .length === 2,
  );
});

describe('the ebpf, netlink, procfs and exec sources read the same sockets', () => {
  let addon: SockDiagAddon;
  beforeAll(() => {
    const loaded = loadSockDiagAddon();
    // The addon is built by npm's install script here: a missing one is a failure, not a skip.
    if (loaded instanceof Error) throw loaded;
    addon = loaded;
  });

  it.each([['server'], ['client']])('in the %s namespace, socket for socket with inodes, as ss sees it', async (which) => {
    const container = which === 'server' ? server : client;
    const pid = await pidOf(container);
    const netlink = await new NetlinkSocketSource({ addon, procfsPath: '/proc' }).readTable(pid);
    const procfs = await new ProcfsSocketSource({ procfsPath: '/proc' }).readTable(pid);
    const exec = await new ExecSocketSource({ docker }).readTable(container);
    const fromEbpf = await ebpfSockets(pid);
    expect(netlink.sockets.length).toBeGreaterThanOrEqual(which === 'server' ? 9 : 4);
    expect(netlink.parseErrors + procfs.parseErrors + exec.parseErrors + fromEbpf.parseErrors).toBe(0);
    expect(keys(netlink.sockets)).toEqual(keys(procfs.sockets));
    expect(keys(exec.sockets)).toEqual(keys(procfs.sockets));
    // One walk of every namespace, cut to this one: the same sockets, inodes and cookies as sock_diag's.
    expect(keys(fromEbpf.sockets)).toEqual(keys(netlink.sockets));
    expect(fromEbpf.sockets.map((s) => s.cookie).sort()).toEqual(netlink.sockets.map((s) => s.cookie).sort());
    const kernel = (await kernelSockets(pid))
      .map((s) => `${s.state} ${s.localAddress}:${s.localPort} ${s.remoteAddress}:${s.remotePort}`)
      .sort();
    expect(keys(netlink.sockets).map((k) => k.replace(/ ino=\d+$/, ''))).toEqual(kernel);
  });

  it("gives a connection accepted after its listener was listed its own inode, not the listener's", async () => {
    const pid = await pidOf(server);
    const listener = (await ebpfSockets(pid)).sockets.find((s) => s.state === 'listen' && s.localPort === 8080)!;
    expect(listener.inode).toBeGreaterThan(0);
    const before = (await kernelSockets(pid)).filter((s) => s.state === 'established').length;
    await dockerCli(['exec', '-d', client, 'sh', '-c', `sleep 100000 | nc ${serverV4} 8080`]);
    await waitFor(
      'the new connection in the server namespace',
      async () => (await kernelSockets(pid)).filter((s) => s.state === 'established').length === before + 1,
    );
    const netlink = await new NetlinkSocketSource({ addon, procfsPath: '/proc' }).readTable(pid);
    const fromEbpf = await ebpfSockets(pid);
    expect(keys(fromEbpf.sockets)).toEqual(keys(netlink.sockets));
    expect(fromEbpf.sockets.filter((s) => s.inode === listener.inode)).toHaveLength(1);
  });

  it("in the host's namespace, a host-network container's listener and connection, as ss sees them", async () => {
    const ours = <T extends { localPort: number; remotePort: number }>(sockets: readonly T[]) =>
      sockets.filter((s) => s.localPort === hostPort || s.remotePort === hostPort);
    const netlink = ours((await new NetlinkSocketSource({ addon, procfsPath: '/proc' }).readTable(process.pid)).sockets);
    const fromEbpf = ours((await ebpfSockets(process.pid)).sockets);
    expect(netlink.map((s) => s.state).sort()).toEqual(['established', 'established', 'listen']);
    expect(keys(fromEbpf)).toEqual(keys(netlink));
    const kernel = ours(await kernelSockets(process.pid))
      .map((s) => `${s.state} ${s.localAddress}:${s.localPort} ${s.remoteAddress}:${s.remotePort}`)
      .sort();
    expect(keys(fromEbpf).map((k) => k.replace(/ ino=\d+$/, ''))).toEqual(kernel);
  });

  it('reports a container that is gone as such (ENOENT), not as a crash', async () => {
    await expect(new NetlinkSocketSource({ addon, procfsPath: '/proc' }).readTable(2 ** 22 + 12345)).rejects.toMatchObject({
      code: 'ENOENT',
    });
  });
});

/** Link health: what each source gives of it differs, as docs/metrics.md#link-health-by-source says (linkHealth.test.ts). */
const LINK_HEALTH =
  /^container_tcp_(sent_bytes|received_bytes|sent_segments|retransmits|connect_seconds)_total$|^container_tcp_rtt_seconds$/;

describe('the exporter gives the same series with every source', () => {
  const seriesOf = (series: Series[], names: string[]) =>
    series
      .filter((s) => s.name.startsWith('container_tcp_') && !LINK_HEALTH.test(s.name) && names.includes(s.labels.container ?? ''))
      .map((s) => `${s.name}${JSON.stringify(s.labels)} ${s.value}`)
      .sort();

  it('ebpf, netlink, procfs and exec agree on container_tcp_*', async () => {
    const results = new Map<SourceChoice, string[]>();
    const healthLinks = new Map<SourceChoice, string[]>();
    const hostAddresses = new Map<SourceChoice, number>();
    for (const socketSource of ['ebpf', 'netlink', 'procfs', 'exec'] as const) {
      const exporter = await startTestExporter({ socketSource });
      try {
        const series = await exporter.scrape();
        expect(select(series, 'outpost_build_info')[0]?.labels.source).toBe(socketSource);
        results.set(socketSource, seriesOf(series, [server, client, sidecar]));
        healthLinks.set(
          socketSource,
          select(series, 'container_tcp_sent_bytes_total')
            .filter((s) => [server, client, sidecar].includes(s.labels.container ?? ''))
            .map((s) => JSON.stringify(s.labels))
            .sort(),
        );
        hostAddresses.set(socketSource, select(series, 'outpost_host_address_info').length);
      } finally {
        await exporter.close();
      }
    }
    const netlink = results.get('netlink')!;
    expect(netlink.filter((s) => s.startsWith('container_tcp_established')).length).toBeGreaterThanOrEqual(4);
    expect(results.get('procfs')).toEqual(netlink);
    expect(results.get('ebpf')).toEqual(netlink);
    // exec cannot tell the server's sockets from its sidecar's (one table for the namespace, given
    // to its owner): the same for the containers that do not share one.
    const unshared = (lines: string[]) => lines.filter((l) => l.includes(`"container":"${client}"`));
    expect(unshared(results.get('exec')!)).toEqual(unshared(netlink));
    // exec is for an engine whose /proc outpost does not see: this host's addresses are not its.
    expect(hostAddresses.get('netlink')).toBeGreaterThan(0);
    expect(hostAddresses.get('procfs')).toBe(hostAddresses.get('netlink'));
    expect(hostAddresses.get('ebpf')).toBe(hostAddresses.get('netlink'));
    expect(hostAddresses.get('exec')).toBe(0);
    // The sources with figures give them for the same links (the open connections of each); the others none.
    expect(healthLinks.get('netlink')!.length).toBeGreaterThanOrEqual(4);
    expect(healthLinks.get('ebpf')).toEqual(healthLinks.get('netlink'));
    expect(healthLinks.get('procfs')).toEqual([]);
    expect(healthLinks.get('exec')).toEqual([]);
  });
});

describe('falling back: ebpf, then netlink, then procfs', () => {
  const brokenAddon = join(tmpdir(), 'outpost-broken-addon.node');
  const missing = (name: string) => join(tmpdir(), `outpost-no-such-${name}`);
  beforeAll(() => {
    writeFileSync(brokenAddon, 'not an ELF file');
  });
  afterAll(() => {
    rmSync(brokenAddon, { force: true });
  });

  async function choose(choice: SourceChoice, paths: { addonPath?: string; bpfAddonPath?: string; bpfObjectPath?: string } = {}) {
    const stream = new PassThrough();
    let logs = '';
    stream.on('data', (chunk: Buffer) => (logs += chunk.toString()));
    const source = await chooseSocketSource({ choice, procfsPath: '/proc', docker, log: createLogger('info', 'logfmt', stream), ...paths });
    source.close?.();
    return { source, lines: () => logs.trim().split('\n').filter(Boolean) };
  }

  it('uses ebpf when it loads, without a word', async () => {
    for (const choice of ['auto', 'ebpf'] as const) {
      const { source, lines } = await choose(choice);
      expect(source.name).toBe('ebpf');
      expect(lines()).toEqual([]);
    }
  });

  it('loads the committed prebuilt BPF object, for hosts without clang', async () => {
    const prebuilt = new URL('../../native/bpf/outpost.bpf.o', import.meta.url).pathname;
    const { source, lines } = await choose('ebpf', { bpfObjectPath: prebuilt });
    expect(source.name).toBe('ebpf');
    expect(lines()).toEqual([]);
  });

  it.each([
    [
      'the BPF object is missing',
      { bpfObjectPath: missing('object.bpf.o') },
      /opening .*outpost-no-such-object\.bpf\.o failed \(open: No such file or directory.*is .*outpost-no-such-object\.bpf\.o there\?/,
    ],
    [
      'the eBPF addon is not built',
      { bpfAddonPath: missing('bpf.node') },
      /the eBPF addon is not usable \(cannot load .*outpost-no-such-bpf\.node/,
    ],
    ['the eBPF addon is broken', { bpfAddonPath: brokenAddon }, /the eBPF addon is not usable \(cannot load .*outpost-broken-addon\.node/],
  ])('uses netlink when %s, said in one log line (a warning when ebpf was asked for)', async (_what, paths, reason) => {
    for (const choice of ['auto', 'ebpf'] as const) {
      const { source, lines } = await choose(choice, paths);
      expect(source.name).toBe('netlink');
      expect(lines()).toHaveLength(1);
      expect(lines()[0]).toMatch(/eBPF socket source unavailable: /);
      expect(lines()[0]).toMatch(reason);
      expect(lines()[0]).toContain('trying netlink instead');
      expect(lines()[0]).toMatch(choice === 'ebpf' ? /^level=warn/ : /^level=info/);
    }
  });

  it.each([
    ['not built', missing('addon.node'), /cannot load .*outpost-no-such-addon\.node/],
    ['broken', brokenAddon, /cannot load .*outpost-broken-addon\.node/],
  ])('reads procfs when the sock_diag addon is %s too, one log line a step', async (_what, addonPath, reason) => {
    const { source, lines } = await choose('netlink', { addonPath });
    expect(source.name).toBe('procfs');
    expect(lines()).toHaveLength(1);
    expect(lines()[0]).toMatch(/netlink socket source unavailable: the sock_diag addon is not usable/);
    expect(lines()[0]).toMatch(reason);
    expect(lines()[0]).toContain('reading procfs instead');
    const auto = await choose('auto', { addonPath, bpfObjectPath: missing('object.bpf.o') });
    expect(auto.source.name).toBe('procfs');
    expect(auto.lines().map((l) => /msg="(\w+)/.exec(l)?.[1])).toEqual(['eBPF', 'netlink']);
  });

  it("uses netlink when the kernel refuses a program the source needs, naming it and the verifier's last line, not capabilities", async () => {
    for (const program of ['list_sockets', 'on_state_change'] as const) {
      const { source, lines } = await choose('auto', { bpfObjectPath: objectRefusing(program) });
      expect(source.name).toBe('netlink');
      expect(lines()).toHaveLength(1);
      expect(lines()[0]).toMatch(
        new RegExp(
          `eBPF socket source unavailable: loading .* failed \\(load: Permission denied.*\\); the kernel's verifier refused program ${program}: R0 invalid mem access 'map_value_or_null'; trying netlink instead`,
        ),
      );
      expect(lines()[0]).not.toMatch(/CAP_/);
    }
  });

  it('runs without the seeding walk when the kernel refuses it, and says what is lost: sockets of before are listed once they change state', async () => {
    const stream = new PassThrough();
    let logs = '';
    stream.on('data', (chunk: Buffer) => (logs += chunk.toString()));
    const source = await chooseSocketSource({
      choice: 'ebpf',
      procfsPath: '/proc',
      docker,
      log: createLogger('info', 'logfmt', stream),
      bpfObjectPath: objectRefusing('seed_sockets'),
    });
    try {
      expect(source.name).toBe('ebpf');
      expect(source.capabilities).not.toContain('sockets_opened_before_start');
      expect(source.capabilities).toEqual(expect.arrayContaining(['sockets', 'connection_events', 'connect_failures', 'time_wait_events']));
      const lines = logs.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^level=warn .*msg="eBPF program seed_sockets left out: loading .* failed \(load: Permission denied.*\); the kernel's verifier refused program seed_sockets: R0 invalid mem access 'map_value_or_null'; sockets opened before outpost started are listed once they change state"/,
      );
      // The server's listener was there before: not listed. A connection made now is.
      const pid = await pidOf(server);
      const id = readlinkSync(`/proc/${pid}/ns/net`);
      const before = (await source.read([{ id, host: false, containers: [] }])).read[0]!.sockets;
      expect(before.filter((s) => s.state === 'listen' && s.localPort === 8080)).toEqual([]);
      await dockerCli(['exec', '-d', client, 'sh', '-c', `sleep 30 | nc ${serverV4} 8080`]);
      await waitFor('the new connection listed', async () => {
        const now = (await source.read([{ id, host: false, containers: [] }])).read[0]!.sockets;
        return now.some((s) => s.state === 'established' && s.localPort === 8080);
      });
    } finally {
      source.close?.();
    }
  });

  it('runs without its DNS program when the kernel refuses it, and says the answers are read by packet sockets instead', async () => {
    const { source, lines } = await choose('ebpf', { bpfObjectPath: objectRefusing('dns_answers') });
    expect(source.name).toBe('ebpf');
    expect(source instanceof EbpfSocketSource && source.dnsAnswers()).toBeUndefined();
    // Every socket capability is still there: the DNS program gives none of them.
    expect([...source.capabilities].sort()).toEqual(EVERY_EBPF_CAPABILITY);
    expect(lines()).toHaveLength(1);
    expect(lines()[0]).toMatch(
      /^level=warn .*msg="eBPF program dns_answers left out: loading .* failed \(load: Permission denied.*\); the kernel's verifier refused program dns_answers: R0 invalid mem access 'map_value_or_null'; DNS answers are read with a packet socket in each namespace instead, which needs CAP_SYS_ADMIN and CAP_NET_RAW"/,
    );
  });

  /** outpost started with `wrapper` before it; its source, a container's series seen, and its fallback lines. */
  async function startUnder(wrapper: string[]) {
    const port = await freePort();
    const child = spawn(wrapper[0]!, [...wrapper.slice(1), process.execPath, MAIN, `--web.listen-address=127.0.0.1:${port}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      const url = `http://127.0.0.1:${port}/metrics`;
      await waitFor('outpost to listen', async () => (await fetch(url)).ok);
      const series = parseExposition(await (await fetch(url)).text());
      return {
        source: select(series, 'outpost_build_info')[0]?.labels.source,
        seesClient: series.some((s) => s.name === 'container_tcp_established' && s.labels.container === client),
        fallbacks: stderr.split('\n').filter((l) => l.includes('source unavailable')),
      };
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  }

  it('uses ebpf with CAP_BPF and CAP_PERFMON and no CAP_SYS_ADMIN', async () => {
    // The bounding set without CAP_SYS_ADMIN: root, with everything else it had.
    const run = await startUnder(['setpriv', '--bounding-set', '-sys_admin']);
    expect(run).toEqual({ source: 'ebpf', seesClient: true, fallbacks: [] });
  });

  it('reads procfs, and still sees every container, with neither CAP_BPF and CAP_PERFMON nor CAP_SYS_ADMIN', async () => {
    // CAP_SYS_ADMIN alone would allow bpf() too (the kernel's rule): without it, netlink cannot enter namespaces either.
    const run = await startUnder(['setpriv', '--bounding-set', '-sys_admin,-bpf,-perfmon']);
    expect(run.source).toBe('procfs');
    expect(run.seesClient).toBe(true);
    expect(run.fallbacks).toHaveLength(2);
    expect(run.fallbacks[0]).toMatch(
      /eBPF socket source unavailable: .*Operation not permitted.*it needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN: this process lacks CAP_BPF and CAP_PERFMON/,
    );
    expect(run.fallbacks[1]).toMatch(/netlink socket source unavailable: .*setns .*Operation not permitted.*CAP_SYS_ADMIN/);
  });

  it('uses netlink on a kernel without BTF, said in one log line', async () => {
    // The kernel's BTF hidden from outpost alone: /dev/null mounted over it in a mount namespace of its own.
    const run = await startUnder([
      'unshare',
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      'mount --bind /dev/null /sys/kernel/btf/vmlinux && exec "$@"',
      'sh',
    ]);
    expect(run.source).toBe('netlink');
    expect(run.seesClient).toBe(true);
    expect(run.fallbacks).toHaveLength(1);
    expect(run.fallbacks[0]).toMatch(/eBPF socket source unavailable: .*failed to find valid kernel BTF.*this kernel has no BTF/);
  });
});
