import { describe, expect, it } from 'vitest';
import { type Scenario, waitFor } from '../support/docker.js';
import { test } from '../support/lab.js';
import { DockerApiProxy } from '../support/dockerApiProxy.js';
import type { TestExporter } from '../support/exporter.js';
import { select } from '../support/exposition.js';

/** The inventory is a cache kept by events: the Docker API is not asked per scrape. */
describe('inventory: Docker API calls', () => {
  let scenario: Scenario;
  let recorder: DockerApiProxy;
  let exporter: TestExporter;
  let net: string;
  const names: string[] = [];

  test.beforeAll(async ({ lab }) => {
    scenario = lab.scenario('inventory');
    net = await scenario.network('net', ['10.213.19.0/24']);
    for (const n of [1, 2, 3]) names.push(await scenario.run(`c${n}`, ['--network', net], ['sleep', '100000']));
    recorder = await DockerApiProxy.start('/run/outpost-it-recorder.sock');
    lab.defer(() => recorder.close());
    exporter = await lab.exporter({
      dockerHost: `unix://${recorder.socketPath}`,
      dockerEndpoint: { kind: 'socket', socketPath: recorder.socketPath },
    });
  });

  it('lists and inspects once, then answers ten scrapes with no call but the open event stream', async () => {
    for (let i = 0; i < 10; i++) {
      const series = await exporter.scrape();
      for (const name of names) expect(select(series, 'outpost_container_info', { container: name })).toHaveLength(1);
    }
    expect(recorder.count(/^GET \/containers\/json/)).toBe(1);
    expect(recorder.count(/^GET \/networks/)).toBe(1);
    expect(recorder.count(/^GET \/events/)).toBe(1);
    // One inspect per running container (the engine may run others than ours), none repeated.
    const inspects = recorder.requests.filter((r) => /^GET \/containers\/[0-9a-f]{64}\/json$/.test(r));
    expect(inspects.length).toBeGreaterThanOrEqual(names.length);
    expect(new Set(inspects).size).toBe(inspects.length);
    expect(recorder.requests.every((r) => r.startsWith('GET '))).toBe(true);
  });

  it('inspects a container once when its start event arrives, and forgets it when it stops', async () => {
    const before = recorder.requests.length;
    const late = await scenario.run('late', ['--network', net], ['sleep', '100000']);
    const seen = await waitFor('the new container in the exposition', async () => {
      const series = await exporter.scrape();
      return select(series, 'outpost_container_info', { container: late }).length === 1 ? series : undefined;
    });
    expect(select(seen, 'outpost_container_address_info', { container: late })).toHaveLength(1);
    for (let i = 0; i < 5; i++) await exporter.scrape();
    const calls = recorder.requests.slice(before);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatch(/^GET \/containers\/[0-9a-f]{64}\/json$/);

    await scenario.cleanup();
    await waitFor('the stopped containers to leave the exposition', async () => {
      const series = await exporter.scrape();
      return !series.some((s) => [...names, late].includes(s.labels.container ?? ''));
    });
    // die/destroy events remove them from the cache: no call was needed but one list of the
    // networks, after the network's destroy event.
    expect(recorder.requests.slice(before + 1)).toEqual([expect.stringMatching(/^GET \/networks/)]);
  });
});
