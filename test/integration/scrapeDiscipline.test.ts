import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureTestImage } from '../support/docker.js';
import { DockerApiProxy } from '../support/dockerApiProxy.js';
import { startTestExporter, type TestExporter } from '../support/exporter.js';
import { parseExposition, select } from '../support/exposition.js';

const LIST = /^GET \/containers\/json/;

/** A Docker API that answers the container list `ms` late, and an exporter behind it. */
async function slowDocker(ms: number, overrides: Parameters<typeof startTestExporter>[0] = {}) {
  const proxy = await DockerApiProxy.start('/run/outpost-it-slow.sock');
  proxy.delays.set(LIST, ms);
  const exporter = await startTestExporter({
    dockerHost: `unix://${proxy.socketPath}`,
    dockerEndpoint: { kind: 'socket', socketPath: proxy.socketPath },
    ...overrides,
  });
  return { proxy, exporter };
}

async function timedScrape(exporter: TestExporter, headers: Record<string, string> = {}) {
  const started = Date.now();
  const response = await fetch(`${exporter.url}/metrics`, { headers });
  const text = await response.text();
  return { status: response.status, series: parseExposition(text), ms: Date.now() - started };
}

describe('scrape discipline', () => {
  let cleanup: (() => Promise<void>) | undefined;

  beforeAll(() => ensureTestImage());
  afterEach(async () => {
    await cleanup?.();
    cleanup = undefined;
  });

  it('answers before X-Prometheus-Scrape-Timeout-Seconds with what is ready, marking the rest', async () => {
    const { proxy, exporter } = await slowDocker(3_000);
    cleanup = async () => {
      await exporter.close();
      await proxy.close();
    };
    const early = await timedScrape(exporter, { 'X-Prometheus-Scrape-Timeout-Seconds': '1.5' });
    expect(early.status).toBe(200);
    // The deadline (1.5 s) less the default offset (0.5 s).
    expect(early.ms).toBeGreaterThanOrEqual(950);
    expect(early.ms).toBeLessThan(1_500);
    expect(select(early.series, 'outpost_collector_success', { collector: 'inventory' })[0]?.value).toBe(0);
    expect(select(early.series, 'outpost_up')[0]?.value).toBe(0);
    expect(exporter.logs()).toContain('collection not done before the scrape deadline');
    // The collection went on: the next scrape gets it, complete, from the same one list call.
    const later = await timedScrape(exporter);
    expect(select(later.series, 'outpost_up')[0]?.value).toBe(1);
    expect(select(later.series, 'outpost_collector_success').every((s) => s.value === 1)).toBe(true);
    expect(proxy.count(LIST)).toBe(1);
  });

  it('bounds a Docker API call by --docker.timeout', async () => {
    const { proxy, exporter } = await slowDocker(5_000, { dockerTimeoutMs: 1_000 });
    cleanup = async () => {
      await exporter.close();
      await proxy.close();
    };
    const scrape = await timedScrape(exporter);
    expect(scrape.status).toBe(200);
    expect(scrape.ms).toBeLessThan(2_500);
    expect(select(scrape.series, 'outpost_up')[0]?.value).toBe(0);
    expect(exporter.logs()).toContain('Docker API unreachable');
  });

  it('serves at most --web.max-requests at once and answers the rest 503', async () => {
    const { proxy, exporter } = await slowDocker(2_000, { maxRequests: 2 });
    cleanup = async () => {
      await exporter.close();
      await proxy.close();
    };
    const statuses = await Promise.all(Array.from({ length: 5 }, () => timedScrape(exporter).then((r) => r.status)));
    expect(statuses.sort()).toEqual([200, 200, 503, 503, 503]);
    // Once they are done, requests are served again.
    expect((await timedScrape(exporter)).status).toBe(200);
  });
});
