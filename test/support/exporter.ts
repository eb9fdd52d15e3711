import { PassThrough } from 'node:stream';
import type { AddressInfo } from 'node:net';
import type { Config } from '../../src/config.js';
import { parseDockerHost } from '../../src/inventory/dockerClient.js';
import { startOutpost, type Outpost } from '../../src/main.js';
import { parseExposition, type Series } from './exposition.js';

/** An exporter running in this process on a free loopback port, with its logs kept. */
export interface TestExporter {
  url: string;
  logs: () => string;
  scrape(path?: string): Promise<Series[]>;
  fetchText(path: string): Promise<{ status: number; text: string }>;
  close(): Promise<void>;
  outpost: Outpost;
}

export async function startTestExporter(overrides: Partial<Config> = {}): Promise<TestExporter> {
  const dockerHost = overrides.dockerHost ?? process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  const config: Config = {
    listenAddress: { host: '127.0.0.1', port: 0 },
    telemetryPath: '/metrics',
    webConfigFile: undefined,
    maxRequests: 40,
    scrapeTimeoutOffsetSeconds: 0.5,
    dockerHost,
    dockerEndpoint: parseDockerHost(dockerHost)!,
    dockerTimeoutMs: 5_000,
    procfsPath: '/proc',
    hostPid: 1,
    socketSource: 'auto',
    maxSeriesPerContainer: 100,
    connectionsRetentionMs: 15 * 60_000,
    policyFile: undefined,
    eventsMax: 10_000,
    eventsLogIntervalMs: 60_000,
    dnsMaxNamesPerContainer: 100,
    dnsGraceMs: 60_000,
    logLevel: 'info',
    logFormat: 'logfmt',
    ...overrides,
  };
  const logStream = new PassThrough();
  let logText = '';
  logStream.on('data', (chunk: Buffer) => (logText += chunk.toString()));
  const outpost = await startOutpost(config, logStream);
  const { port } = outpost.server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  const fetchText = async (path: string) => {
    const response = await fetch(`${url}${path}`);
    return { status: response.status, text: await response.text() };
  };
  return {
    url,
    outpost,
    logs: () => logText,
    fetchText,
    async scrape(path = '/metrics') {
      const { status, text } = await fetchText(path);
      if (status !== 200) throw new Error(`scrape answered ${status}: ${text}`);
      return parseExposition(text);
    },
    close: () => outpost.close(),
  };
}
