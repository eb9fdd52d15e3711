import { execFile } from 'node:child_process';
import { chmod, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type Scenario, docker, kernelSockets, pidOf, waitFor } from '../support/docker.js';
import { test } from '../support/lab.js';
import { DockerApiProxy, OUTPOST_READ_ONLY_API } from '../support/dockerApiProxy.js';
import type { TestExporter } from '../support/exporter.js';
import { parseExposition, select, type Series } from '../support/exposition.js';
import { LEAST_PRIVILEGE, withoutPairs } from '../support/leastPrivilege.js';
import { freePort } from '../support/net.js';

const IMAGE = 'outpost-test/outpost:ci';
const PROXY_SOCKET = '/run/outpost-it-apiproxy.sock';
const CAP_SYS_PTRACE = 1n << 19n;

// The test differs from the README's line only in where the exporter listens (host network,
// loopback, so the scrape stays on this machine) and in the socket it mounts (the allowlisting
// proxy in front of the real one).

/**
 * Debian 12's Docker 20.10 knows no capability after CAP_AUDIT_READ: it refuses `--cap-add BPF` and
 * `--cap-add PERFMON` ("unknown capability"). On it the recommended flags are run without them, and
 * the image reads procfs; imageEbpf.test.ts runs them whole on Docker 26.
 */
const ON_DOCKER_20 = withoutPairs(LEAST_PRIVILEGE, ['--cap-add', 'BPF'], ['--cap-add', 'PERFMON']);

/** The flags run here without the pairs given. */
const withoutFlags = (...pairs: [string, string][]) => withoutPairs(ON_DOCKER_20, ...pairs);

/** What the container wrote to stdout and stderr (outpost logs to stderr). */
async function logsOf(name: string): Promise<string> {
  const { stdout, stderr } = await promisify(execFile)('docker', ['logs', name]);
  return stdout + stderr;
}

const links = (series: Series[], containers: string[]) =>
  series
    .filter((s) => /^container_tcp_(listening|established|sockets)$/.test(s.name) && containers.includes(s.labels.container!))
    .map((s) => `${s.name}${JSON.stringify({ ...s.labels, image: undefined })} ${s.value}`)
    .sort();

describe('the container image on Docker 20.10, run with least privilege', () => {
  let scenario: Scenario;
  let proxy: DockerApiProxy;
  let hostExporter: TestExporter;
  let watched: string[];
  let port: number;
  const outpost = 'outpost-it-image-outpost';

  /** Runs the image with `flags`, returns its exposition once it answers. */
  async function runOutpost(name: string, flags: readonly string[], socket = PROXY_SOCKET): Promise<Series[]> {
    await docker(['rm', '-f', name]).catch(() => undefined);
    const listen = await freePort();
    await docker([
      'run',
      '-d',
      '--name',
      name,
      '--network',
      'host',
      '--health-interval',
      '1s',
      ...flags,
      '-v',
      `${socket}:/var/run/docker.sock:ro`,
      '-e',
      `OUTPOST_WEB_LISTEN_ADDRESS=127.0.0.1:${listen}`,
      IMAGE,
      '--procfs.path=/host/proc',
    ]);
    if (name === outpost) port = listen;
    const text = await waitFor(`${name} to answer`, async () => {
      const r = await fetch(`http://127.0.0.1:${listen}/metrics`);
      return r.ok ? r.text() : undefined;
    });
    return parseExposition(text);
  }

  test.beforeAll(async ({ lab }) => {
    scenario = lab.scenario('image');
    // The outpost containers a test left (a failed one, before its own removal).
    lab.defer(() => docker(['rm', '-f', outpost, `${outpost}-variant`]).catch(() => undefined));
    const { buildOutpostImage } = await import('../support/outpostImage.js');
    await buildOutpostImage(IMAGE);
    const net = await scenario.network('net', ['10.213.22.0/24']);
    const server = await scenario.run('server', ['--network', net], ['nc', '-ll', '-p', '8080', '-e', 'cat']);
    const client = await scenario.run('client', ['--network', net], ['sh', '-c', `sleep 100000 | nc ${server} 8080`]);
    const sidecar = await scenario.run('sidecar', ['--network', `container:${server}`], ['sh', '-c', 'sleep 100000 | nc 127.0.0.1 8080']);
    const hostnet = await scenario.run(
      'hostnet',
      ['--network', 'host'],
      ['sh', '-c', 'nc -ll -p 39193 -e cat & sleep 0.3; sleep 100000 | nc 127.0.0.1 39193'],
    );
    watched = [server, client, sidecar, hostnet];
    const serverPid = await pidOf(server);
    await waitFor('the connections', async () => (await kernelSockets(serverPid)).filter((s) => s.state === 'established').length === 3);
    // And the host network's loopback connection, both of its ends, before the exporter starts.
    const hostnetPid = await pidOf(hostnet);
    await waitFor('the loopback connection', async () => {
      const ends = (await kernelSockets(hostnetPid)).filter(
        (s) => s.state === 'established' && (s.localPort === 39193 || s.remotePort === 39193),
      );
      return ends.length === 2;
    });
    proxy = await DockerApiProxy.start(PROXY_SOCKET, { allow: OUTPOST_READ_ONLY_API });
    lab.defer(() => proxy.close());
    hostExporter = await lab.exporter();
    // The build alone took 332 s with no layer cached (vfs storage, the build stage's npm ci whole).
  }, 900_000);

  // The flags have no DAC_READ_SEARCH and a read-only root: this test
  // passing is what shows they are not needed.
  it('reports the sockets exactly as the exporter run on the host does, through a read-only API proxy', async () => {
    const fromContainer = await runOutpost(outpost, ON_DOCKER_20);
    expect(select(fromContainer, 'outpost_build_info')[0]?.labels.source).toBe('procfs');
    expect(await logsOf(outpost)).toMatch(
      /eBPF socket source unavailable: .*it needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN: this process lacks CAP_BPF and CAP_PERFMON; trying netlink instead/,
    );
    const fromHost = await hostExporter.scrape();
    expect(select(fromContainer, 'outpost_up')[0]?.value).toBe(1);
    expect(links(fromContainer, watched).length).toBeGreaterThan(20);
    expect(links(fromContainer, watched)).toEqual(links(fromHost, watched));
    expect(select(fromContainer, 'outpost_container_read_errors_total')).toEqual([]);
    // Only the read-only calls were made; the proxy denied none.
    expect(proxy.denied).toEqual([]);
    expect(proxy.count(/^GET \/containers\/json/)).toBeGreaterThan(0);
    expect(proxy.count(/^GET \/events/)).toBeGreaterThan(0);
  });

  // Names need a packet socket in each namespace, made from inside it: CAP_NET_RAW and
  // CAP_SYS_ADMIN (setns), which the least privilege does not grant.
  it('names no peer by DNS with the least privilege, and says which capability it lacks, once', async () => {
    const metrics = parseExposition(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
    expect(select(metrics, 'outpost_dns_reading')[0]?.value).toBe(0);
    const said = (await logsOf(outpost)).split('\n').filter((l) => l.includes('peers are not named by the DNS answers'));
    expect(said).toHaveLength(1);
    expect(said[0]).toContain("entering a container's network namespace needs CAP_SYS_ADMIN: this process lacks it");
  });

  it('runs as root in its user namespace with SYS_PTRACE as its only capability', async () => {
    // In the host's PID namespace (--pid=host) Docker runs no init: node, not PID 1 there, takes
    // SIGTERM as any process does (the stop test below).
    const top = await docker(['top', outpost, '-eo', 'pid,args']);
    // bin/outpost exec'd node with its memory settings (the launcher's shell is gone).
    const nodeLine = top.split('\n').find((l) => /\bnode --max-semi-space-size=1 --heap-growing-percent=10 \S*dist\/main\.js\b/.test(l))!;
    expect(top).not.toMatch(/\bsh\b.*bin\/outpost/);
    const nodePid = nodeLine.trim().split(/\s+/)[0];
    expect((await readFile(`/proc/${nodePid}/environ`, 'utf8')).split('\0')).toContain('MALLOC_ARENA_MAX=1');
    const status = await readFile(`/proc/${nodePid}/status`, 'utf8');
    const field = (name: string) => new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(status)![1]!;
    expect(field('Uid').split(/\s+/)[0]).toBe('0');
    expect(BigInt(`0x${field('CapEff')}`)).toBe(CAP_SYS_PTRACE);
    expect(field('NoNewPrivs')).toBe('1');
    await waitFor(
      'the HEALTHCHECK to pass',
      async () => (await docker(['inspect', '-f', '{{.State.Health.Status}}', outpost])) === 'healthy',
    );
    expect(await docker(['inspect', '-f', '{{.HostConfig.ReadonlyRootfs}}', outpost])).toBe('true');
  });

  it("serves the link map's page and its bundled script from the image", async () => {
    const page = await fetch(`http://127.0.0.1:${port}/map`);
    expect(page.status).toBe(200);
    const script = await fetch(`http://127.0.0.1:${port}/map/map.js`);
    expect(script.status).toBe(200);
    expect((await script.text()).length).toBeGreaterThan(100_000);
  });

  it('stops cleanly on docker stop within 2 s', async () => {
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).ok).toBe(true);
    const started = Date.now();
    await docker(['stop', '-t', '10', outpost]);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await docker(['inspect', '-f', '{{.State.ExitCode}}', outpost])).toBe('0');
  });

  it('needs SYS_PTRACE: without it every container is an error, with the reason', async () => {
    const name = `${outpost}-variant`;
    const series = await runOutpost(name, withoutFlags(['--cap-add', 'SYS_PTRACE']));
    for (const c of watched)
      expect(select(series, 'outpost_container_read_errors_total', { container: c })[0]?.value, c).toBeGreaterThan(0);
    expect(links(series, watched)).toEqual([]);
    expect(await logsOf(name)).toContain('EACCES');
  });

  it("needs the host's /proc: without it no container is visible, and it says why", async () => {
    const name = `${outpost}-variant`;
    const series = await runOutpost(name, withoutFlags(['-v', '/proc:/host/proc:ro']));
    expect(select(series, 'outpost_up')[0]?.value).toBe(1);
    expect(links(series, watched)).toEqual([]);
    expect(await logsOf(name)).toContain("not the host's /proc");
  });

  it('needs root: another user reaching the API, with SYS_PTRACE, still cannot read other processes', async () => {
    await chmod(PROXY_SOCKET, 0o666);
    const name = `${outpost}-variant`;
    const series = await runOutpost(name, [...ON_DOCKER_20, '--user', '65534:65534']);
    expect(select(series, 'outpost_up')[0]?.value).toBe(1);
    for (const c of watched)
      expect(select(series, 'outpost_container_read_errors_total', { container: c })[0]?.value, c).toBeGreaterThan(0);
    expect(links(series, watched)).toEqual([]);
    expect(await logsOf(name)).toContain('EACCES');
  });
});
