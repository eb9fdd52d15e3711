import { describe, expect, it } from 'vitest';
import { type Scenario, waitFor } from '../support/docker.js';
import { test } from '../support/lab.js';
import { DockerApiProxy } from '../support/dockerApiProxy.js';
import type { TestExporter } from '../support/exporter.js';
import { select } from '../support/exposition.js';

/** Faults of the Docker API, injected by a proxy between outpost and the real engine. */
describe('a Docker API that breaks', () => {
  let scenario: Scenario;
  let proxy: DockerApiProxy;
  let exporter: TestExporter;
  let net: string;
  let first: string;

  const info = async (name: string) => select(await exporter.scrape(), 'outpost_container_info', { container: name }).length;

  test.beforeAll(async ({ lab }) => {
    scenario = lab.scenario('apifaults');
    net = await scenario.network('net', ['10.213.23.0/24']);
    first = await scenario.run('first', ['--network', net], ['sleep', '100000']);
    proxy = await DockerApiProxy.start('/run/outpost-it-apifaults.sock');
    lab.defer(() => proxy.close());
    exporter = await lab.exporter({
      dockerHost: `unix://${proxy.socketPath}`,
      dockerEndpoint: { kind: 'socket', socketPath: proxy.socketPath },
    });
    expect(await info(first)).toBe(1);
  });

  it('reconnects a cut event stream on the next scrape and lists again, missing nothing started meanwhile', async () => {
    const lists = proxy.count(/^GET \/containers\/json/);
    expect(proxy.cutEventStreams()).toBe(1);
    await waitFor('the cut to be logged', () => exporter.logs().includes('Docker event stream ended'));
    // Started while no stream was open: only the re-list can see it.
    const during = await scenario.run('during', ['--network', net], ['sleep', '100000']);
    expect(await info(during)).toBe(1);
    expect(proxy.count(/^GET \/events/)).toBe(2);
    expect(proxy.count(/^GET \/containers\/json/)).toBe(lists + 1);
    // And the new stream works: a container started now is seen through its event.
    const after = await scenario.run('after', ['--network', net], ['sleep', '100000']);
    await waitFor('the container started after the reconnect', async () => (await info(after)) === 1);
    expect(proxy.count(/^GET \/containers\/json/)).toBe(lists + 1);
  });

  it('reports outpost_up 0 for a malformed container list, says why once, and recovers', async () => {
    proxy.cutEventStreams(); // so that the next scrape lists again
    proxy.malformed.set(/^GET \/containers\/json/, '{"not":"a list"}');
    for (let i = 0; i < 3; i++) {
      const series = await exporter.scrape();
      expect(select(series, 'outpost_up')[0]?.value).toBe(0);
      expect(select(series, 'outpost_container_info')).toEqual([]);
    }
    expect(exporter.logs().match(/malformed container list/g)).toHaveLength(1);
    proxy.malformed.clear();
    const series = await exporter.scrape();
    expect(select(series, 'outpost_up')[0]?.value).toBe(1);
    expect(select(series, 'outpost_container_info', { container: first })).toHaveLength(1);
  });

  it('skips a container whose inspect answer is malformed, says so once, and reports the others', async () => {
    proxy.malformed.set(/^GET \/containers\/[0-9a-f]{64}\/json$/, 'this is not JSON');
    const broken = await scenario.run('broken', ['--network', net], ['sleep', '100000']);
    let series = await exporter.scrape();
    for (let i = 0; i < 3; i++) series = await exporter.scrape();
    expect(select(series, 'outpost_up')[0]?.value).toBe(1);
    expect(select(series, 'outpost_container_info', { container: broken })).toEqual([]);
    expect(select(series, 'outpost_container_info', { container: first })).toHaveLength(1);
    expect(exporter.logs().match(/malformed inspect answer/g)?.length).toBe(1);
    proxy.malformed.clear();
  });
});
