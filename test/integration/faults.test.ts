import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { containerFromInspect, type Container } from '../../src/inventory/container.js';
import { type Scenario, docker, ensureTestImage, kernelSockets, pidOf, waitFor } from '../support/docker.js';
import { test } from '../support/lab.js';
import { procfsCollector } from '../support/collector.js';
import type { TestExporter } from '../support/exporter.js';
import { select, type Series } from '../support/exposition.js';
import { PrivateDaemon } from '../support/privateDaemon.js';

const up = (series: Series[]) => select(series, 'outpost_up')[0]?.value;

describe('containers that exit during collection', () => {
  let scenario: Scenario;
  let exporter: TestExporter;
  const victims: string[] = [];
  let server: string;

  test.beforeAll(async ({ lab }) => {
    scenario = lab.scenario('churn');
    const net = await scenario.network('net', ['10.213.16.0/24']);
    server = await scenario.run('server', ['--network', net], ['nc', '-ll', '-p', '8080', '-e', 'cat']);
    for (let i = 0; i < 6; i++) {
      victims.push(await scenario.run(`victim${i}`, ['--network', net], ['sh', '-c', `sleep 100000 | nc ${server} 8080`]));
    }
    const serverPid = await pidOf(server);
    await waitFor(
      'six clients connected',
      async () => (await kernelSockets(serverPid)).filter((s) => s.state === 'established').length === 6,
    );
    exporter = await lab.exporter();
  });

  // What this describe made goes before the next one starts.
  test.afterAll(async ({ lab }) => {
    await lab.close();
  });

  it('skips a container whose process is gone after the inventory listed it, without failing the scrape', async () => {
    const api = new Docker();
    const stale: Container[] = [];
    for (const name of [server, victims[0]!]) stale.push(containerFromInspect(await api.getContainer(name).inspect())!);
    await docker(['kill', victims[0]!]);
    await waitFor('the killed process to be gone', () => {
      try {
        process.kill(stale[1]!.pid, 0);
        return false;
      } catch {
        return true;
      }
    });
    // The inventory said both were running; by the time the sockets are read, one is not.
    const collector = procfsCollector(stale);
    const collection = await collector.collect();
    expect(collection.up).toBe(true);
    expect(Object.values(collection.stages).every((s) => s.success)).toBe(true);
    expect(collection.links.map((l) => l.container.name)).toEqual([server]);
    expect(collector.counters.readErrors.size).toBe(0);
  });

  it('answers every scrape while containers are killed under it, then drops their series', async () => {
    const killed = victims.slice(1);
    const scrapes: Promise<Series[]>[] = [];
    let stop = false;
    const loop = (async () => {
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- set from the callback below
      while (!stop) {
        const s = exporter.scrape();
        scrapes.push(s);
        await s;
      }
    })();
    for (const v of killed) await docker(['kill', v]);
    stop = true;
    await loop;
    const results = await Promise.all(scrapes);
    expect(results.length).toBeGreaterThan(5);
    for (const series of results) expect(up(series)).toBe(1);

    const after = await waitFor('the killed containers to leave the exposition', async () => {
      const s = await exporter.scrape();
      return s.some((x) => victims.includes(x.labels.container ?? '')) ? undefined : s;
    });
    expect(select(after, 'container_tcp_listening', { container: server })).toHaveLength(1);
    expect(select(after, 'outpost_container_read_errors_total')).toEqual([]);
  });
});

describe('a container whose /proc files cannot be read', () => {
  let scenario: Scenario;
  let exporter: TestExporter;
  let good: string;
  let bad: string;
  let badNamespace: string;
  let procfs: string;

  test.beforeAll(async ({ lab }) => {
    scenario = lab.scenario('unreadable');
    const net = await scenario.network('net', ['10.213.18.0/24']);
    good = await scenario.run('good', ['--network', net], ['nc', '-ll', '-p', '8080', '-e', 'cat']);
    bad = await scenario.run('bad', ['--network', net], ['nc', '-ll', '-p', '8080', '-e', 'cat']);
    // A procfs mount in which the bad container's TCP table is not a readable file.
    procfs = await mkdtemp(join(tmpdir(), 'outpost-procfs-'));
    lab.defer(() => rm(procfs, { recursive: true, force: true }));
    await symlink('/proc/1', join(procfs, '1'));
    const goodPid = await pidOf(good);
    await symlink(`/proc/${goodPid}`, join(procfs, String(goodPid)));
    const badPid = await pidOf(bad);
    await mkdir(join(procfs, String(badPid), 'net', 'tcp'), { recursive: true });
    await symlink(`/proc/${badPid}/ns`, join(procfs, String(badPid), 'ns'));
    // And one whose namespace link cannot be read (readlink fails, and not because it exited).
    badNamespace = await scenario.run('bad-ns', ['--network', net], ['nc', '-ll', '-p', '8080', '-e', 'cat']);
    const badNsPid = await pidOf(badNamespace);
    await mkdir(join(procfs, String(badNsPid), 'ns'), { recursive: true });
    await writeFile(join(procfs, String(badNsPid), 'ns', 'net'), 'not a link');
    // The TCP table files are procfs's: netlink would read the namespace through ns/net instead.
    exporter = await lab.exporter({ procfsPath: procfs, socketSource: 'procfs' });
  });

  // What this describe made goes before the next one starts.
  test.afterAll(async ({ lab }) => {
    await lab.close();
  });

  it('counts it per scrape in outpost_container_read_errors_total, logs it once, and reports the rest', async () => {
    let series: Series[] = [];
    for (let i = 0; i < 3; i++) series = await exporter.scrape();
    expect(up(series)).toBe(1);
    expect(select(series, 'outpost_container_read_errors_total', { container: bad })[0]?.value).toBe(3);
    expect(select(series, 'outpost_container_read_errors_total', { container: good })).toEqual([]);
    expect(select(series, 'container_tcp_listening', { container: good })).toHaveLength(1);
    expect(select(series, 'container_tcp_sockets', { container: bad })).toEqual([]);
    expect(select(series, 'outpost_container_read_errors_total', { container: badNamespace })[0]?.value).toBe(3);
    const logged = exporter
      .logs()
      .split('\n')
      .filter((l) => l.includes('cannot read the sockets'));
    expect(logged).toHaveLength(2);
    expect(logged.find((l) => l.includes(`container=${bad} `))).toContain('EISDIR');
    expect(logged.find((l) => l.includes(`container=${badNamespace} `))).toContain('EINVAL');
  });
});

describe('the Docker daemon stopped and started again', () => {
  const daemon = new PrivateDaemon();
  let exporter: TestExporter;
  const name = 'outpost-it-outage-keep';

  test.beforeAll(async ({ lab }) => {
    await daemon.start();
    lab.defer(() => daemon.stop());
    await ensureTestImage(daemon.socket);
    await docker(['rm', '-f', name], daemon.socket).catch(() => undefined);
    lab.defer(() => docker(['rm', '-f', name], daemon.socket).catch(() => undefined));
    // restart=always: the daemon starts it again after its own restart, with a new pid.
    await docker(['run', '-d', '--name', name, '--restart', 'always', 'outpost-test/busybox:1', 'sleep', '100000'], daemon.socket);
    exporter = await lab.exporter({
      dockerHost: daemon.socket,
      dockerEndpoint: { kind: 'socket', socketPath: '/run/outpost-it-d2.sock' },
    });
  }, 120_000);

  it('reports outpost_up 0 while it is down and 1 again after, with the inventory correct, without a restart', async () => {
    const before = await exporter.scrape();
    expect(up(before)).toBe(1);
    expect(select(before, 'container_tcp_sockets', { container: name, state: 'listen' })).toHaveLength(1);
    const pidBefore = Number(await docker(['inspect', '-f', '{{.State.Pid}}', name], daemon.socket));

    await daemon.stop();
    for (let i = 0; i < 3; i++) {
      const { status, text } = await exporter.fetchText('/metrics');
      expect(status).toBe(200);
      expect(text).toMatch(/^outpost_up 0$/m);
      expect(text).toMatch(/^outpost_collector_success\{collector="inventory"\} 0$/m);
      expect(text).not.toContain(`container="${name}"`);
    }
    expect((await exporter.fetchText('/readyz')).status).toBe(503);
    // Said once, with the reason, not once per scrape.
    expect(exporter.logs().match(/Docker API unreachable/g)).toHaveLength(1);
    expect(exporter.logs()).toMatch(/level=error .*outpost-it-d2\.sock/);

    await daemon.start();
    const after = await waitFor(
      'outpost_up 1 again',
      async () => {
        const s = await exporter.scrape();
        return up(s) === 1 && select(s, 'container_tcp_sockets', { container: name }).length > 0 ? s : undefined;
      },
      30_000,
    );
    const pidAfter = Number(await docker(['inspect', '-f', '{{.State.Pid}}', name], daemon.socket));
    expect(pidAfter).not.toBe(pidBefore);
    // Its sockets were read through the new pid: the old one is gone.
    expect(select(after, 'outpost_container_info', { container: name })).toHaveLength(1);
    expect(select(after, 'container_tcp_sockets', { container: name, state: 'listen' })[0]?.value).toBe(0);
    expect((await exporter.fetchText('/readyz')).status).toBe(200);
  }, 120_000);
});
