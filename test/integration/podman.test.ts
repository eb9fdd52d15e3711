import { spawn, type ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { type Scenario, docker, kernelSockets, pidOf, waitFor } from '../support/docker.js';
import { test, type Lab } from '../support/lab.js';
import type { TestExporter } from '../support/exporter.js';
import { select, type Series } from '../support/exposition.js';
import { expectMatchesKernel, withoutDockerDns } from '../support/kernelView.js';
import { PodmanService } from '../support/podman.js';

/** One engine's copy of the scenario: what is needed to read its series by role. */
interface Deployment {
  scenario: Scenario;
  exporter: TestExporter;
  hostPort: number;
  /** Container name → role, address → role (to compare engines whose names and subnets differ). */
  roles: Map<string, string>;
  loopbackClient: ChildProcess;
}

const METRICS = [
  'container_tcp_listening',
  'container_tcp_established',
  'container_tcp_sockets',
  'outpost_container_address_info',
  'outpost_published_port_info',
];

/**
 * The same scenario on Docker and on rootful Podman (Debian's 4.3, through its Docker-compatible
 * API): a server on an internal network and a second one publishing 127.0.0.1:<port>, two
 * clients holding connections, a host process calling the published port over loopback.
 */
describe("Podman: outpost on Podman's Docker-compatible API", () => {
  let podman: PodmanService;
  const deployments: Record<'docker' | 'podman', Deployment | undefined> = { docker: undefined, podman: undefined };

  async function deploy(lab: Lab, engine: 'docker' | 'podman', octet: number, hostPort: number): Promise<Deployment> {
    const host = engine === 'podman' ? podman.host : undefined;
    const runOptions = engine === 'podman' ? PodmanService.RUN_OPTIONS : [];
    const scenario = lab.scenario(`pm-${engine}`, host);
    const inner = await scenario.network('inner', [`10.213.${octet}.0/24`]);
    // Docker publishes no port of a container only on an internal network.
    const outer = await scenario.network('outer', [`10.213.${octet + 1}.0/24`], { internal: false });
    if (engine === 'podman') await podman.openBridge(inner);
    const server = await scenario.create(
      'server',
      [...runOptions, '--network', inner, '-p', `127.0.0.1:${hostPort}:8080`],
      ['nc', '-ll', '-p', '8080', '-e', 'cat'],
    );
    await docker(['network', 'connect', outer, server], host);
    await docker(['start', server], host);
    const serverAddress = await scenario.ip(server, inner);
    const roles = new Map<string, string>([
      [server, 'server'],
      [serverAddress, 'server@inner'],
      [await scenario.ip(server, outer), 'server@outer'],
      [`10.213.${octet + 1}.1`, 'gateway@outer'],
      [String(hostPort), 'HOST_PORT'],
      [inner, 'inner'],
      [outer, 'outer'],
    ]);
    for (const n of [1, 2]) {
      const client = await scenario.run(
        `client${n}`,
        [...runOptions, '--network', inner],
        ['sh', '-c', `while ! nc ${serverAddress} 8080 -e sleep 1000000; do sleep 1; done`],
      );
      roles.set(client, `client${n}`).set(await scenario.ip(client, inner), `client${n}@inner`);
    }
    const loopbackClient = spawn('sh', ['-c', `sleep 1000000 | busybox nc 127.0.0.1 ${hostPort}`], { stdio: 'ignore', detached: true });
    lab.defer(() => {
      if (loopbackClient.pid) process.kill(-loopbackClient.pid, 'SIGKILL');
    });
    const serverPid = await pidOf(server, host);
    await waitFor(
      `the three connections to ${engine}'s server`,
      async () => (await kernelSockets(serverPid)).filter((s) => s.state === 'established').length === 3,
      30_000,
    );
    const exporter = await lab.exporter(host ? { dockerHost: host } : {});
    return { scenario, exporter, hostPort, roles, loopbackClient };
  }

  /** The deployment's series of its own containers, with names, addresses and the host port as roles. */
  async function seriesByRole(d: Deployment): Promise<string[]> {
    const series = await d.exporter.scrape();
    const role = (v: string) => d.roles.get(v) ?? v.replace(/^localhost\//, '');
    return series
      .filter((s) => METRICS.includes(s.name) && d.roles.has(s.labels.container ?? ''))
      .map(
        (s) =>
          `${s.name}{${Object.entries(s.labels)
            .map(([k, v]) => `${k}=${role(v)}`)
            .join(',')}} ${s.value}`,
      )
      .sort();
  }

  test.beforeAll(async ({ lab }) => {
    podman = await PodmanService.start();
    lab.defer(() => podman.stop());
    deployments.docker = await deploy(lab, 'docker', 92, 18091);
    deployments.podman = await deploy(lab, 'podman', 94, 18092);
  }, 180_000);

  it('reports on Podman what the kernel shows in each container', async () => {
    const d = deployments.podman!;
    const series: Series[] = await d.exporter.scrape();
    expect(select(series, 'outpost_up')[0]!.value).toBe(1);
    for (const [name, role] of d.roles) {
      if (!/^(server|client\d)$/.test(role)) continue;
      expectMatchesKernel(series, [name], withoutDockerDns(await kernelSockets(await pidOf(name, podman.host))));
    }
  });

  it("gives the same series as Docker's for the same scenario (names, addresses and the port as roles)", async () => {
    const [fromDocker, fromPodman] = await Promise.all([seriesByRole(deployments.docker!), seriesByRole(deployments.podman!)]);
    expect(fromPodman).toEqual(fromDocker);
    // What they hold: the peers named at both ends, the loopback call through the published port
    // seen from the outer gateway (the host), the port published on 127.0.0.1.
    expect(fromPodman).toEqual(
      expect.arrayContaining([
        'container_tcp_established{container=client1,image=outpost-test/busybox:1,direction=outbound,remote_address=server@inner,port=8080,remote_container=server} 1',
        'container_tcp_established{container=server,image=outpost-test/busybox:1,direction=inbound,remote_address=client2@inner,port=8080,remote_container=client2} 1',
        'container_tcp_established{container=server,image=outpost-test/busybox:1,direction=inbound,remote_address=gateway@outer,port=8080,remote_container=host} 1',
        'outpost_published_port_info{container=server,host_address=127.0.0.1,host_port=HOST_PORT,container_port=8080} 1',
        'outpost_container_address_info{container=server,network=outer,address=server@outer,scope=host} 1',
      ]),
    );
  });

  it("names Podman's containers' network mode as Docker does, and follows its events", async () => {
    const d = deployments.podman!;
    const info = select(await d.exporter.scrape(), 'outpost_container_info').filter((s) =>
      d.roles.get(s.labels.container ?? '')?.startsWith('client'),
    );
    expect(info.map((s) => s.labels.network_mode)).toEqual([d.scenario.name('inner'), d.scenario.name('inner')]);
    // A container started and then joined to a second network is seen by events, not by the
    // re-list a minute later: its new address shows within seconds.
    const late = await d.scenario.run('late', [...PodmanService.RUN_OPTIONS, '--network', d.scenario.name('inner')], ['sleep', '1000000']);
    await waitFor(
      'the late container',
      async () => select(await d.exporter.scrape(), 'outpost_container_info', { container: late }).length === 1,
      10_000,
    );
    await docker(['network', 'connect', d.scenario.name('outer'), late], podman.host);
    const outerAddress = await d.scenario.ip(late, d.scenario.name('outer'));
    await waitFor(
      'its address on the second network',
      async () =>
        select(await d.exporter.scrape(), 'outpost_container_address_info', { container: late, address: outerAddress }).length === 1,
      10_000,
    );
    await docker(['rm', '-f', late], podman.host);
    await waitFor(
      'it to go',
      async () => select(await d.exporter.scrape(), 'outpost_container_info', { container: late }).length === 0,
      10_000,
    );
  });
});
