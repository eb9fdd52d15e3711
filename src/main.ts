#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import type { Server } from 'node:http';
import { pathToFileURL } from 'node:url';
import { Collector } from './collection/collection.js';
import { formatDuration, helpText, parseCommandLine, type CommandLine, type Config } from './config.js';
import { createDockerClient } from './inventory/dockerClient.js';
import { ContainerInventory } from './inventory/inventory.js';
import { InvalidFlagError, InvalidPolicyFileError, InvalidWebConfigError } from './base/errors.js';
import { watchFileChanges } from './base/fileChanges.js';
import { createLogger } from './base/log.js';
import { Exposition } from './exposition/exposition.js';
import { ExpectedLinks } from './policy/expectedLinks.js';
import { loadPolicyFile } from './policy/policyFile.js';
import { createApp } from './http/server.js';
import { HostNamespace } from './namespaces/hostNamespace.js';
import { UnexpectedEvents } from './events/unexpectedEvents.js';
import { chooseSocketSource } from './sockets/socketSourceChoice.js';
import { EbpfSocketSource } from './sockets/ebpfSource.js';
import type { SocketSource } from './sockets/socketSource.js';
import { VERSION } from './base/version.js';
import { errorMessage } from './base/errors.js';
import { loadDnsAnswersAddon } from './names/dnsAnswersAddon.js';
import { DnsAnswerSockets } from './names/dnsAnswerSockets.js';
import { EbpfDnsAnswers } from './names/ebpfDnsAnswers.js';
import { PeerNames } from './names/peerNames.js';
import { ResolvedNames } from './names/resolvedNames.js';
import { loadWebConfig, PLAIN_HTTP } from './http/webConfig.js';
import { createWebServer, watchWebConfig, type WebConfigWatch } from './http/webServer.js';

/** How long open connections may keep a stopping process alive. */
const SHUTDOWN_GRACE_MS = 5_000;

export interface Outpost {
  server: Server;
  close(): Promise<void>;
}

/** Wires the pipeline and starts listening. Resolves once the port is open. */
export async function startOutpost(config: Config, logStream: NodeJS.WritableStream = process.stderr): Promise<Outpost> {
  const log = createLogger(config.logLevel, config.logFormat, logStream);
  // Read first: a bad file must stop the start before any port is opened.
  const webConfig = config.webConfigFile ? await loadWebConfig(config.webConfigFile) : PLAIN_HTTP;
  const policyFile = config.policyFile ? { path: config.policyFile, rules: await loadPolicyFile(config.policyFile) } : undefined;
  const docker = createDockerClient(config.dockerEndpoint, config.dockerTimeoutMs);
  const source = await chooseSocketSource({ choice: config.socketSource, procfsPath: config.procfsPath, docker, log });
  const names = resolvedNames(config, log, source);
  const policy = new ExpectedLinks({
    log,
    ...(policyFile ? { file: policyFile } : {}),
    ...(names ? { namesOf: (id: string, address: string) => names.namesOf(id, address) } : {}),
  });
  // Set once the server listens; a request may come before, so it is declared here, where basicAuthUsers sees it.
  // eslint-disable-next-line prefer-const
  let webConfigWatch: WebConfigWatch | undefined;
  const inventory = new ContainerInventory({ docker, events: createDockerClient(config.dockerEndpoint), log });
  const events = new UnexpectedEvents({
    policy,
    procfsPath: config.procfsPath,
    log,
    capacity: config.eventsMax,
    logIntervalMs: config.eventsLogIntervalMs,
  });
  const collector = new Collector({
    inventory,
    source,
    // exec is for engines whose /proc this process does not see: Docker's network modes group then.
    namespacesFrom: source.name === 'exec' ? 'docker' : 'procfs',
    procfsPath: config.procfsPath,
    hostNamespace: new HostNamespace({ procfsPath: config.procfsPath, pid: config.hostPid, log }),
    log,
    maxSeriesPerContainer: config.maxSeriesPerContainer,
    connectionsRetentionMs: config.connectionsRetentionMs,
    policy,
    events,
    ...(names ? { names } : {}),
  });
  const app = createApp({
    telemetryPath: config.telemetryPath,
    maxRequests: config.maxRequests,
    scrapeTimeoutOffsetSeconds: config.scrapeTimeoutOffsetSeconds,
    collector,
    exposition: new Exposition(),
    policy,
    events: events.ring,
    connectionsRetention: formatDuration(config.connectionsRetentionMs),
    pingDocker: () => docker.ping(),
    basicAuthUsers: () => webConfigWatch?.current().basicAuthUsers ?? webConfig.basicAuthUsers,
    log,
  });

  const handle = app.callback();
  const server = createWebServer(webConfig, (request, response) => {
    void handle(request, response); // Koa answers its own errors
  });
  server.listen({ host: config.listenAddress.host, port: config.listenAddress.port });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  webConfigWatch = config.webConfigFile ? watchWebConfig({ path: config.webConfigFile, initial: webConfig, server, log }) : undefined;
  const policyWatch = policyFile ? watchFileChanges({ files: () => [policyFile.path], onChange: () => policy.reloadFile() }) : undefined;
  const address = server.address();
  log.info(
    {
      version: VERSION,
      address: typeof address === 'object' && address ? `${address.address}:${address.port}` : address,
      tls: Boolean(webConfig.tls),
      basicAuth: webConfig.basicAuthUsers.size > 0,
      docker: config.dockerHost,
      procfs: config.procfsPath,
      source: source.name,
      ...(names ? { dns: names.method } : {}),
      policyFile: config.policyFile,
    },
    'outpost listening',
  );

  return {
    server,
    async close() {
      inventory.stop();
      webConfigWatch?.stop();
      policyWatch?.stop();
      const closed = new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
      server.closeIdleConnections();
      const timer = setTimeout(() => {
        server.closeAllConnections();
      }, SHUTDOWN_GRACE_MS);
      await closed;
      clearTimeout(timer);
      source.close?.();
      names?.close();
      log.info('outpost stopped');
    },
  };
}

/**
 * The names stage, unless turned off or nothing can read the answers (said once): the ebpf
 * source's program dns_answers where it runs, else a packet socket in each namespace.
 */
function resolvedNames(config: Config, log: ReturnType<typeof createLogger>, source: SocketSource): ResolvedNames | undefined {
  if (config.dnsMaxNamesPerContainer === 0) return undefined;
  // exec reads an engine whose /proc is not this one's: its namespaces cannot be entered from here.
  if (source.name === 'exec') {
    log.warn("peers are not named by DNS answers with the exec source: the engine's namespaces are out of reach");
    return undefined;
  }
  const store = new PeerNames({ maxNamesPerContainer: config.dnsMaxNamesPerContainer, graceMs: config.dnsGraceMs });
  const fromEbpf = source instanceof EbpfSocketSource ? source.dnsAnswers() : undefined;
  // Which reader runs is said in the start line (dns=ebpf or dns=packet_socket).
  if (fromEbpf) return new ResolvedNames({ reader: new EbpfDnsAnswers(fromEbpf), store });
  const addon = loadDnsAnswersAddon();
  if (addon instanceof Error) {
    log.warn({ err: addon }, `peers are not named by DNS answers: ${errorMessage(addon)}`);
    return undefined;
  }
  return new ResolvedNames({ reader: new DnsAnswerSockets({ addon, procfsPath: config.procfsPath, log }), store });
}

async function main(): Promise<void> {
  let commandLine: CommandLine;
  try {
    commandLine = parseCommandLine(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof InvalidFlagError) {
      process.stderr.write(`outpost: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  if (commandLine.kind === 'help') {
    process.stdout.write(helpText());
    return;
  }
  if (commandLine.kind === 'version') {
    process.stdout.write(`outpost ${VERSION} (node ${process.version})\n`);
    return;
  }

  let outpost: Outpost;
  try {
    outpost = await startOutpost(commandLine.config);
  } catch (error) {
    if (error instanceof InvalidWebConfigError || error instanceof InvalidPolicyFileError) {
      process.stderr.write(`outpost: ${error.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`outpost: cannot listen on --web.listen-address: ${(error as Error).message}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`outpost: ${signal} received, stopping\n`);
    outpost.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => {
    stop('SIGTERM');
  });
  process.on('SIGINT', () => {
    stop('SIGINT');
  });
}

// Started as a program (not imported by a test).
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) await main();
