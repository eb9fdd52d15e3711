import autocannon from 'autocannon';
import { describe, expect, it } from 'vitest';
import { type Scenario, docker, waitFor } from '../support/docker.js';
import { test } from '../support/lab.js';
import { parseExposition, select } from '../support/exposition.js';
import type { ExporterProcess } from '../support/exporterProcess.js';

describe('endurance', () => {
  let scenario: Scenario;
  let exporter: ExporterProcess;
  let net: string;

  test.beforeAll(async ({ lab }) => {
    scenario = lab.scenario('churn2');
    net = await scenario.network('net', ['10.213.24.0/24']);
    exporter = await lab.exporterProcess();
  });

  it('answers 300 scrapes while 30 containers start and stop, drops removed ones, and keeps its memory bounded', async () => {
    const server = await scenario.run('server', ['--network', net], ['nc', '-ll', '-p', '8080', '-e', 'cat']);
    // 30 containers at a time that come and go, each with a connection to the server: every
    // round starts a new one and removes the oldest.
    const removedAt = new Map<string, number>();
    const alive: string[] = [];
    let stop = false;
    const churn = (async () => {
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- set from the callback below
      for (let round = 0; !stop; round++) {
        alive.push(await scenario.run(`c${round}`, ['--network', net], ['sh', '-c', `sleep 100000 | nc ${server} 8080`]));
        if (alive.length > 30) {
          const gone = alive.shift()!;
          await docker(['rm', '-f', gone]);
          removedAt.set(gone, Date.now());
        }
      }
    })();
    await waitFor('30 containers up', () => alive.length >= 30, 120_000);
    // A young process sizes its heap and compiles its hot code over its first hundred scrapes or
    // so, and sizes it again when the workload grows: a warm-up on the idle host left the heap to
    // grow under the churn inside the measured window (×1.06–×1.18 from scrape 50 to 300, with the
    // level flat from scrape 100 on). So the warm-up runs under the same churn as the 300 scrapes
    // the leak check counts (measured so: ×1.01–×1.03).
    for (let i = 0; i < 100; i++) await (await fetch(`${exporter.url}/metrics`)).text();

    const failures: string[] = [];
    const rss: number[] = [];
    let previous: { startedAt: number } | undefined;
    for (let i = 1; i <= 300; i++) {
      const startedAt = Date.now();
      const response = await fetch(`${exporter.url}/metrics`);
      const series = parseExposition(await response.text());
      if (response.status !== 200 || select(series, 'outpost_up')[0]?.value !== 1) failures.push(`scrape ${i}: ${response.status}`);
      // A container removed before the previous scrape began is gone from this one.
      if (previous) {
        for (const [name, at] of removedAt) {
          if (at < previous.startedAt && series.some((s) => s.labels.container === name)) failures.push(`scrape ${i}: ${name} still there`);
        }
      }
      previous = { startedAt };
      rss.push(exporter.rssKiB());
      await new Promise((r) => setTimeout(r, 30));
    }
    stop = true;
    await churn;
    expect(failures).toEqual([]);
    expect(removedAt.size).toBeGreaterThan(5);
    // RSS moves with the garbage collector's cycles by a few MB from one scrape to the next; the
    // median of 20 scrapes around each point compares levels, not where in a cycle a sample fell.
    const median = (from: number, to: number) => rss.slice(from - 1, to).sort((a, b) => a - b)[Math.floor((to - from + 1) / 2)]!;
    const at50 = median(41, 60);
    const at300 = median(281, 300);
    const growth = at300 / at50;
    console.log(
      `RSS around scrape 50: ${at50} KiB, around 300: ${at300} KiB (×${growth.toFixed(3)}); samples ${rss[49]} → ${rss[299]} KiB`,
    );
    // Issue #6: flat within 10 %, while about 90 containers come and go.
    expect(growth).toBeLessThanOrEqual(1.1);
  }, 300_000);

  it('holds 50 concurrent clients on /metrics for 20 s without an error', async () => {
    const result = await autocannon({ url: `${exporter.url}/metrics`, connections: 50, duration: 20 });
    console.log(
      `load: ${result.requests.total} requests, ${result.requests.average}/s, latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, max ${result.latency.max} ms`,
    );
    expect(result.errors).toBe(0);
    expect(result.timeouts).toBe(0);
    expect(result.non2xx).toBe(0);
    expect(result['2xx']).toBeGreaterThan(100);
  }, 60_000);
});
