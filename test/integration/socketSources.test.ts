import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDockerClient, parseDockerHost } from '../../src/docker/dockerClient.js';
import { createLogger } from '../../src/log.js';
import { ExecSocketSource } from '../../src/sockets/execSource.js';
import { NetlinkSocketSource } from '../../src/sockets/netlinkSource.js';
import { ProcfsSocketSource } from '../../src/sockets/procfsSource.js';
import { loadSockDiagAddon, type SockDiagAddon } from '../../src/sockets/sockDiagAddon.js';
import { chooseSocketSource, type SourceChoice } from '../../src/sockets/socketSourceChoice.js';
import type { TcpSocket } from '../../src/sockets/tcpSocket.js';
import { Scenario, ensureTestImage, kernelSockets, pidOf, waitFor } from '../support/docker.js';
import { startTestExporter } from '../support/exporter.js';
import { parseExposition, select, type Series } from '../support/exposition.js';
import { freePort } from '../support/net.js';

const MAIN = new URL('../../dist/main.js', import.meta.url).pathname;
const docker = createDockerClient(parseDockerHost(process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock')!);

/** One comparable line per socket, with its inode, sorted. */
function keys(sockets: readonly TcpSocket[]): string[] {
  return sockets.map((s) => `${s.state} ${s.localAddress}:${s.localPort} ${s.remoteAddress}:${s.remotePort} ino=${s.inode}`).sort();
}

const scenario = new Scenario('sources');
let server: string;
let client: string;
let sidecar: string;

beforeAll(async () => {
  await ensureTestImage();
  const net = await scenario.network('net', ['10.213.28.0/24', 'fd00:213:28::/64']);
  server = await scenario.run('server', ['--network', net], ['sh', '-c', 'httpd -f -p 127.0.0.1:6060 & httpd -f -p [::1]:7070 & nc -ll -p 8080 -e cat']);
  // The sidecar shares the server's namespace: both sources must read it once, the same way.
  sidecar = await scenario.run('sidecar', ['--network', `container:${server}`], ['sh', '-c', 'sleep 1; sleep 100000 | nc 127.0.0.1 8080']);
  const v4 = await scenario.ip(server, net);
  const v6 = await scenario.ip(server, net, 6);
  client = await scenario.run('client', ['--network', net], [
    'sh',
    '-c',
    `sleep 1; sleep 100000 | nc ${v4} 8080 & sleep 0.5; sleep 100000 | nc ${v6} 8080 & sleep 0.5; sleep 100000 | nc ${v4} 8080`,
  ]);
  const serverPid = await pidOf(server);
  await waitFor('5 connections in the server namespace', async () => (await kernelSockets(serverPid)).filter((s) => s.state === 'established').length === 5);
});

afterAll(() => scenario.cleanup());

describe('the netlink, procfs and exec sources read the same sockets', () => {
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
    expect(netlink.sockets.length).toBeGreaterThanOrEqual(which === 'server' ? 9 : 4);
    expect(netlink.parseErrors + procfs.parseErrors + exec.parseErrors).toBe(0);
    expect(keys(netlink.sockets)).toEqual(keys(procfs.sockets));
    expect(keys(exec.sockets)).toEqual(keys(procfs.sockets));
    const kernel = (await kernelSockets(pid)).map((s) => `${s.state} ${s.localAddress}:${s.localPort} ${s.remoteAddress}:${s.remotePort}`).sort();
    expect(keys(netlink.sockets).map((k) => k.replace(/ ino=\d+$/, ''))).toEqual(kernel);
  });

  it('reports a container that is gone as such (ENOENT), not as a crash', async () => {
    await expect(new NetlinkSocketSource({ addon, procfsPath: '/proc' }).readTable(2 ** 22 + 12345)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('the exporter gives the same series with every source', () => {
  const seriesOf = (series: Series[], names: string[]) =>
    series
      .filter((s) => s.name.startsWith('container_tcp_') && names.includes(s.labels.container ?? ''))
      .map((s) => `${s.name}${JSON.stringify(s.labels)} ${s.value}`)
      .sort();

  it('netlink, procfs and exec agree on container_tcp_*', async () => {
    const results = new Map<SourceChoice, string[]>();
    const hostAddresses = new Map<SourceChoice, number>();
    for (const socketSource of ['netlink', 'procfs', 'exec'] as const) {
      const exporter = await startTestExporter({ socketSource });
      try {
        const series = await exporter.scrape();
        expect(select(series, 'outpost_build_info')[0]?.labels.source).toBe(socketSource);
        results.set(socketSource, seriesOf(series, [server, client, sidecar]));
        hostAddresses.set(socketSource, select(series, 'outpost_host_address_info').length);
      } finally {
        await exporter.close();
      }
    }
    const netlink = results.get('netlink')!;
    expect(netlink.filter((s) => s.startsWith('container_tcp_established')).length).toBeGreaterThanOrEqual(4);
    expect(results.get('procfs')).toEqual(netlink);
    // exec cannot tell the server's sockets from its sidecar's (one table for the namespace, given
    // to its owner): the same for the containers that do not share one.
    const unshared = (lines: string[]) => lines.filter((l) => l.includes(`"container":"${client}"`));
    expect(unshared(results.get('exec')!)).toEqual(unshared(netlink));
    // exec is for an engine whose /proc outpost does not see: this host's addresses are not its.
    expect(hostAddresses.get('netlink')).toBeGreaterThan(0);
    expect(hostAddresses.get('procfs')).toBe(hostAddresses.get('netlink'));
    expect(hostAddresses.get('exec')).toBe(0);
  });
});

describe('falling back to procfs', () => {
  const brokenAddon = join(tmpdir(), 'outpost-broken-addon.node');
  beforeAll(() => writeFileSync(brokenAddon, 'not an ELF file'));
  afterAll(() => rmSync(brokenAddon, { force: true }));

  async function choose(choice: SourceChoice, addonPath?: string) {
    const stream = new PassThrough();
    let logs = '';
    stream.on('data', (chunk: Buffer) => (logs += chunk.toString()));
    const source = await chooseSocketSource({ choice, procfsPath: '/proc', docker, log: createLogger('info', 'logfmt', stream), ...(addonPath ? { addonPath } : {}) });
    return { source, logs: () => logs };
  }

  it('uses netlink when the addon is there and namespaces can be entered', async () => {
    const { source, logs } = await choose('auto');
    expect(source.name).toBe('netlink');
    expect(logs()).toBe('');
  });

  it.each([
    ['not built', join(tmpdir(), 'outpost-no-such-addon.node'), /cannot load .*outpost-no-such-addon\.node/],
    ['broken', join(tmpdir(), 'outpost-broken-addon.node'), /cannot load .*outpost-broken-addon\.node/],
  ])('reads procfs when the addon is %s, said in one log line', async (_what, path, reason) => {
    for (const choice of ['auto', 'netlink'] as const) {
      const { source, logs } = await choose(choice, path);
      expect(source.name).toBe('procfs');
      const lines = logs().trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/netlink socket source unavailable: the sock_diag addon is not usable/);
      expect(lines[0]).toMatch(reason);
      expect(lines[0]).toContain('reading procfs instead');
    }
  });

  it('reads procfs when the process may not enter namespaces (no CAP_SYS_ADMIN), and still sees every container', async () => {
    const port = await freePort();
    // The bounding set without CAP_SYS_ADMIN: root, with everything else it had.
    const child = spawn('setpriv', ['--bounding-set', '-sys_admin', process.execPath, MAIN, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      const url = `http://127.0.0.1:${port}/metrics`;
      await waitFor('outpost to listen', async () => (await fetch(url)).ok);
      const series = parseExposition(await (await fetch(url)).text());
      expect(select(series, 'outpost_build_info')[0]?.labels.source).toBe('procfs');
      expect(series.some((s) => s.name === 'container_tcp_established' && s.labels.container === client)).toBe(true);
      const fallback = stderr.split('\n').filter((l) => l.includes('netlink socket source unavailable'));
      expect(fallback).toHaveLength(1);
      expect(fallback[0]).toMatch(/setns .*Operation not permitted.*CAP_SYS_ADMIN/);
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });
});
