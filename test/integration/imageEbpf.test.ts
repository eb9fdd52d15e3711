import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type Scenario, docker, ensureTestImage, waitFor } from '../support/docker.js';
import { test } from '../support/lab.js';
import { parseExposition, select, type Series } from '../support/exposition.js';
import { EVERY_EBPF_CAPABILITY } from '../support/ebpfCapabilities.js';
import { LEAST_PRIVILEGE, withoutPairs } from '../support/leastPrivilege.js';
import { freePort } from '../support/net.js';
import { buildOutpostImage } from '../support/outpostImage.js';
import { RecentDockerEngine } from '../support/recentDocker.js';

const IMAGE = 'outpost-test/outpost:ci';
const CAPABILITIES = { SYS_PTRACE: 1n << 19n, PERFMON: 1n << 38n, BPF: 1n << 39n };

/**
 * The image with the recommended flags whole (docker-compose.yml's, the README's `docker run`) on
 * a Docker Engine that can grant CAP_BPF and CAP_PERFMON (Debian 13's 26.1; this machine's 20.10
 * cannot): it runs the ebpf source, with nothing more than SYS_PTRACE, BPF and PERFMON.
 */
describe('the container image on Docker 26, with BPF and PERFMON: the ebpf source', () => {
  let engine: RecentDockerEngine;
  let scenario: Scenario;
  let refused: string;
  let net: string;
  /** The port of the image run with the flags whole (the first test). */
  let leastPort: number;
  const outpost = 'outpost-it-imagebpf-outpost';

  /** Runs the image on the recent engine with `flags`; its port once it answers. */
  async function runOutpost(name: string, flags: readonly string[]): Promise<number> {
    await docker(['rm', '-f', name], engine.socket).catch(() => undefined);
    const port = await freePort();
    await docker(
      [
        'run',
        '-d',
        '--name',
        name,
        '--network',
        'host',
        ...flags,
        '-v',
        `${engine.socketPath}:/var/run/docker.sock:ro`,
        '-e',
        `OUTPOST_WEB_LISTEN_ADDRESS=127.0.0.1:${port}`,
        IMAGE,
        '--procfs.path=/host/proc',
      ],
      engine.socket,
    );
    await waitFor(`${name} to answer`, async () => (await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined))?.ok);
    return port;
  }

  const scrape = async (port: number): Promise<Series[]> => parseExposition(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
  const logsOf = async (name: string) => {
    const { stdout, stderr } = await promisify(execFile)('docker', ['-H', engine.socket, 'logs', name]);
    return stdout + stderr;
  };

  test.beforeAll(async ({ lab }) => {
    engine = await RecentDockerEngine.start();
    lab.defer(() => engine.stop());
    await buildOutpostImage(IMAGE); // on this machine's engine, as image.test.ts does: the same image
    await engine.load(IMAGE);
    await ensureTestImage(engine.socket);
    scenario = lab.scenario('imagebpf', engine.socket);
    // The outpost containers a test left (a failed one, before its own removal).
    lab.defer(() => docker(['rm', '-f', outpost, `${outpost}-variant`], engine.socket).catch(() => undefined));
    net = await scenario.network('net', ['10.213.26.0/24']);
    await engine.openBridge(net);
    const server = await scenario.run('server', ['--network', net], ['nc', '-ll', '-p', '8080', '-e', 'cat']);
    const serverIp = await scenario.ip(server, net);
    await scenario.run('client', ['--network', net], ['sh', '-c', `sleep 100000 | nc ${serverIp} 8080`]);
    // Refused connects, one every 2 s to a port no one listens on: only the ebpf source sees them.
    refused = await scenario.run(
      'refused',
      ['--network', net],
      ['sh', '-c', `while true; do nc ${serverIp} 9999 </dev/null; sleep 2; done`],
    );
  }, 900_000);

  it("runs ebpf with SYS_PTRACE, BPF and PERFMON alone, sees all it can, and counts a container's refused connects", async () => {
    console.log(`engine: Docker ${await engine.version()}`);
    const port = await runOutpost(outpost, LEAST_PRIVILEGE);
    leastPort = port;
    const series = await scrape(port);
    expect(select(series, 'outpost_build_info')[0]?.labels.source).toBe('ebpf');
    expect(
      select(series, 'outpost_source_capability_info')
        .map((s) => s.labels.capability)
        .sort(),
    ).toEqual(EVERY_EBPF_CAPABILITY);
    // Its links: the client's connection, seen at both ends.
    const client = scenario.name('client');
    expect(
      select(series, 'container_tcp_established', { container: client, port: '8080', remote_container: scenario.name('server') })[0]?.value,
    ).toBe(1);
    const failures = async () =>
      select(await scrape(port), 'container_tcp_connect_failures_total', { container: refused, port: '9999' })[0]?.value ?? 0;
    const first = await waitFor('a refused connect counted', async () => ((await failures()) > 0 ? failures() : undefined));
    await waitFor('two more refused connects counted', async () => (await failures()) >= first + 2);
    expect(await logsOf(outpost)).not.toMatch(/unavailable|left out|saw only/);

    const pid = Number(await docker(['inspect', '-f', '{{.State.Pid}}', outpost], engine.socket));
    const nodePid = (await docker(['top', outpost, '-eo', 'pid,args'], engine.socket))
      .split('\n')
      .find((l) => /\bnode\b.*dist\/main\.js/.test(l))!
      .trim()
      .split(/\s+/)[0];
    expect(pid).toBeGreaterThan(0);
    const status = await readFile(`/proc/${nodePid}/status`, 'utf8');
    expect(BigInt(`0x${/^CapEff:\s+(\S+)$/m.exec(status)![1]}`)).toBe(CAPABILITIES.SYS_PTRACE | CAPABILITIES.BPF | CAPABILITIES.PERFMON);
  });

  it('names a peer by the DNS answer its container got, with those three capabilities alone (eBPF program dns_answers)', async () => {
    expect(await logsOf(outpost)).toMatch(/source=ebpf dns=ebpf .*msg="outpost listening"/);
    // Started after outpost: its lookup of the server's name, answered by the engine's embedded DNS.
    const server = scenario.name('server');
    const namer = await scenario.run('namer', ['--network', net], ['sh', '-c', `sleep 100000 | nc ${server} 8080`]);
    const serverIp = await scenario.ip(server, net);
    const named = async () => select(await scrape(leastPort), 'container_peer_name_info', { container: namer });
    await waitFor('the server named', async () => (await named()).length > 0);
    expect((await named()).map((s) => `${s.labels.remote_address} ${s.labels.name}`)).toEqual([`${serverIp} ${server}`]);
    expect(select(await scrape(leastPort), 'outpost_dns_reading')[0]?.value).toBe(1);
  });

  it("without the host's PID namespace: ebpf still runs, and says the sockets of before are listed once they change state", async () => {
    const name = `${outpost}-variant`;
    const port = await runOutpost(name, withoutPairs(LEAST_PRIVILEGE, ['--pid', 'host']));
    const series = await scrape(port);
    expect(select(series, 'outpost_build_info')[0]?.labels.source).toBe('ebpf');
    const capabilities = select(series, 'outpost_source_capability_info').map((s) => s.labels.capability);
    expect(capabilities).toContain('connect_failures');
    expect(capabilities).not.toContain('sockets_opened_before_start');
    expect(await logsOf(name)).toMatch(
      /eBPF program seed_sockets saw only the processes of outpost's own PID namespace, not the host's; sockets opened before outpost started are listed once they change state/,
    );
  });
});
