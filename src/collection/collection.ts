import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ConnectionLedger } from '../connections/connectionLedger.js';
import type { Container } from '../inventory/container.js';
import type { DockerNetwork } from '../inventory/network.js';
import { attributeRead } from '../attribution/attribution.js';
import { DEFAULT_EPHEMERAL_RANGE, parsePortRange } from '../links/classification.js';
import { buildContainerLinks, LinkContext, type ContainerLinks } from '../links/containerLinks.js';
import { ConnectionTotals, type ConnectionSeries } from '../connections/connectionTotals.js';
import { countNewConnections, newConnectionsOf } from '../connections/newConnections.js';
import { FigureLedger } from '../connections/connectionFigures.js';
import { linkRtt, sumLinkFigures, type LinkRtt } from '../connections/linkFigures.js';
import { FigureTotals } from '../connections/figureTotals.js';
import { CONNECT_FAILURE_REASONS, connectFailureReason, type ConnectFailureReason } from '../sockets/tcpSocket.js';
import type { Logger } from '../base/log.js';
import type { PolicyEvaluation } from '../policy/expectedLinks.js';
import type { HostNamespace } from '../namespaces/hostNamespace.js';
import { groupByNetNamespace, groupByNetworkMode, isProcessGone, type NetNamespace } from '../namespaces/netNamespaces.js';
import { externalHostAddresses } from '../net/hostAddresses.js';
import type { SocketSource, SourceCapability, SourceLosses } from '../sockets/socketSource.js';
import type { EventsInput } from '../events/unexpectedEvents.js';
import type { NameCounts, PeerName } from '../names/resolvedNames.js';

/** The pipeline's stages, in order; each is timed and reported as outpost_collector_*{collector}. */
export const STAGES = ['inventory', 'namespaces', 'sockets', 'names', 'attribution', 'connections', 'links', 'policy', 'events'] as const;
export type Stage = (typeof STAGES)[number];

export interface StageResult {
  durationSeconds: number;
  success: boolean;
}

/** Everything one scrape reports, from one pass through the pipeline. */
export interface Collection {
  /** The Docker API answered and the collection ran. */
  up: boolean;
  /** The inventory: every running container known (empty when Docker did not answer). */
  containers: Container[];
  /** One entry per container whose sockets were read. */
  links: ContainerLinks[];
  stages: Record<Stage, StageResult>;
  /** Source of the sockets (ebpf, netlink, procfs, exec). */
  source: string;
  /** What that source can see on this host (outpost_source_capability_info). */
  sourceCapabilities: readonly SourceCapability[];
  /** What a source with events lost since it started (outpost_source_records_lost_total). */
  sourceLosses?: SourceLosses;
  /** Connection ends remembered between collections (bounded by the sockets the kernel lists). */
  trackedConnections: number;
  /** The links judged by the expected-links policy (undefined until the policy stage ran). */
  policy?: PolicyEvaluation;
  /** The Docker host's addresses that other hosts may connect to (outpost_host_address_info). */
  hostAddresses: string[];
  /** Per link, the mean RTT of its connections open now or closed since the last collection (container_tcp_rtt_seconds). */
  rtt: LinkRtt[];
  /** The names the containers resolved to the addresses they are connected to (container_peer_name_info). */
  peerNames: PeerName[];
  /** What the names stage did since start; undefined when it does not run. */
  nameCounts?: NameCounts;
}

/** Where the running containers come from (ContainerInventory); throws when Docker does not answer. */
export interface ContainerSnapshots {
  snapshot(): Promise<Container[]>;
  /** The networks as of the last snapshot. */
  networks(): readonly DockerNetwork[];
}

export interface CollectorOptions {
  inventory: ContainerSnapshots;
  source: SocketSource;
  /** How containers are grouped into namespaces: by /proc/<pid>/ns/net, or by Docker's network modes. */
  namespacesFrom?: 'procfs' | 'docker';
  procfsPath: string;
  /** The Docker host's network namespace (--host.pid). */
  hostNamespace: HostNamespace;
  log: Logger;
  /** Most established series per container (--established.max-series-per-container). */
  maxSeriesPerContainer: number;
  /** How long a link's connection counter stays without a new connection (--connections.retention). */
  connectionsRetentionMs: number;
  /** The expected-links policy (src/policy/), which judges each collection's links. */
  policy: { evaluate(links: readonly ContainerLinks[], containers: readonly Container[]): PolicyEvaluation };
  /** The unexpected connections as events (src/events/); none kept without it. */
  events?: { observe(input: EventsInput): Promise<unknown> };
  /** The names containers resolved (src/names/); peers are not named without it. */
  names?: {
    read(namespaces: readonly NetNamespace[]): void;
    connected(links: readonly ContainerLinks[], counted: Iterable<ConnectionSeries>): PeerName[];
    namesOf(containerId: string, address: string): string[];
    counts(): NameCounts;
  };
}

/** Cumulative counters the collector keeps across scrapes (Prometheus counters). */
export interface CollectorCounters {
  /** Per container name: collections in which its sockets could not be read. */
  readErrors: Map<string, number>;
  /** Lines of the kernel's TCP tables that did not parse. */
  parseErrors: number;
  /** Connections counted per link, however short (container_tcp_connections_total). */
  connections: ConnectionTotals;
  /** The same, of the connections the policy does not allow (container_tcp_unexpected_connections_total). */
  unexpectedConnections: ConnectionTotals;
  /** Connects that failed, per reason and link (container_tcp_connect_failures_total; sources with events only). */
  connectFailures: Record<ConnectFailureReason, ConnectionTotals>;
  /** What the links' connections did, per link (container_tcp_{sent,received}_bytes_total, _retransmits_total, _connect_seconds_total). */
  figures: FigureTotals;
}

/**
 * Runs the pipeline of docs/architecture.md once per scrape: inventory → namespaces → sockets →
 * attribution → links. Scrapes that arrive while a collection runs share it.
 */
export class Collector {
  readonly #options: CollectorOptions;
  readonly #log: Logger;
  #inFlight: Promise<Collection> | undefined;
  /** The collection being built by the one in flight, for answers that cannot wait for it. */
  #building: Collection | undefined;
  readonly #loggedReadErrors = new Set<string>();
  #procfsBlind = false;
  readonly #ledger = new ConnectionLedger();
  readonly #figures = new FigureLedger();
  /** The events of the collections so far, made one collection after another once each scrape is answered. */
  #events: Promise<void> = Promise.resolve();
  /** How the last events made went: each collection reports it as its events stage. */
  #lastEvents: StageResult = { durationSeconds: 0, success: true };
  readonly counters: CollectorCounters;

  constructor(options: CollectorOptions) {
    this.#options = options;
    this.#log = options.log;
    const totals = { maxSeriesPerContainer: options.maxSeriesPerContainer, retentionMs: options.connectionsRetentionMs };
    const connections = new ConnectionTotals(totals);
    const perLink = <K extends string>(keys: readonly K[]) =>
      Object.fromEntries(keys.map((k) => [k, new ConnectionTotals({ ...totals, labelsFrom: connections })])) as Record<K, ConnectionTotals>;
    this.counters = {
      readErrors: new Map(),
      parseErrors: 0,
      connections,
      unexpectedConnections: new ConnectionTotals(totals),
      connectFailures: perLink(CONNECT_FAILURE_REASONS),
      figures: new FigureTotals({ ...totals, labelsFrom: connections }),
    };
  }

  /** Resolves once the events of every collection so far are made: GET /events waits for it. */
  eventsMade(): Promise<void> {
    return this.#events;
  }

  collect(): Promise<Collection> {
    this.#inFlight ??= this.#collect().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  /**
   * The collection, or — when it is not done within `ms` — what is ready by then: the stages not
   * finished report success 0 and what they would have added is missing. The collection goes
   * on, for the scrapes after.
   */
  async collectWithin(ms: number): Promise<Collection> {
    const done = this.collect();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(
        () => {
          resolve(undefined);
        },
        Math.max(0, ms),
      );
    });
    const first = await Promise.race([done, late]);
    clearTimeout(timer);
    if (first) return first;
    const partial = this.#building;
    if (!partial) return done; // not started: cannot be, collect() starts it at once
    this.#log.warn(
      { deadlineSeconds: ms / 1000, unfinished: STAGES.filter((s) => !partial.stages[s].success) },
      'collection not done before the scrape deadline; answering with what is ready',
    );
    return {
      ...partial,
      up: partial.stages.inventory.success,
      stages: Object.fromEntries(STAGES.map((s) => [s, { ...partial.stages[s] }])) as Record<Stage, StageResult>,
    };
  }

  async #collect(): Promise<Collection> {
    const stages = Object.fromEntries(STAGES.map((s) => [s, { durationSeconds: 0, success: false }])) as Record<Stage, StageResult>;
    // The events are made after the scrape's answer (#makeEvents): this is the last made.
    stages.events = { ...this.#lastEvents };
    const timed = async <T>(stage: Stage, work: () => Promise<T> | T): Promise<T> => {
      const start = performance.now();
      try {
        const result = await work();
        stages[stage].success = true;
        return result;
      } finally {
        stages[stage].durationSeconds = (performance.now() - start) / 1000;
      }
    };
    const { inventory, source, procfsPath } = this.#options;
    const collection: Collection = {
      up: false,
      containers: [],
      links: [],
      stages,
      source: source.name,
      sourceCapabilities: source.capabilities,
      trackedConnections: this.#ledger.size,
      hostAddresses: [],
      rtt: [],
      peerNames: [],
    };
    this.#building = collection;

    let containers: Container[];
    try {
      containers = await timed('inventory', () => inventory.snapshot());
    } catch {
      return collection; // the inventory logged why, once
    }
    collection.containers = containers;
    this.#forgetGone(containers);

    const { hostNamespace } = this.#options;
    const [hostNamespaceId, hostAddresses, ephemeralRange] = await Promise.all([
      hostNamespace.id(),
      hostNamespace.addresses(),
      // The range of outpost's own namespace: a container keeps Linux's default unless given --sysctl.
      readFile(join(procfsPath, 'sys', 'net', 'ipv4', 'ip_local_port_range'), 'utf8').then(parsePortRange, () => undefined),
    ]);
    // With namespaces from Docker (the exec source, a remote engine) this /proc is not the engine's host.
    if (this.#options.namespacesFrom !== 'docker') {
      collection.hostAddresses = externalHostAddresses(
        hostAddresses,
        inventory.networks().flatMap((n) => n.bridgeSubnets),
      );
    }
    const groups = await timed('namespaces', () =>
      this.#options.namespacesFrom === 'docker'
        ? groupByNetworkMode(containers)
        : groupByNetNamespace(containers, procfsPath, hostNamespaceId),
    );
    for (const c of groups.vanished) this.#log.debug({ container: c.name }, 'container exited before its sockets were read; skipped');
    this.#checkProcfsView(containers.length, groups.vanished.length);
    for (const { container, error } of groups.unreadable) this.#countUnreadable(container, error);

    const read = await timed('sockets', () => source.read(groups.namespaces));
    for (const { namespace, error } of read.failed) {
      for (const c of namespace.containers) {
        if (isProcessGone(error.cause)) this.#log.debug({ container: c.name }, 'container exited while its sockets were read; skipped');
        else this.#countUnreadable(c, error);
      }
    }
    for (const r of read.read) this.counters.parseErrors += r.parseErrors;
    collection.sourceLosses = source.losses?.();
    // After the sockets: every answer that came before a connection read is in its socket's queue by now.
    const { names } = this.#options;
    await timed('names', () => names?.read(groups.namespaces));

    const { sockets, passed, failedConnects, closed } = await timed('attribution', () => attributeRead(read, this.#ledger.holderOf));
    // A namespace that could not be read this time keeps what was remembered of it.
    const unread = new Set(read.failed.map((f) => f.namespace.id));
    const [newEnds, endFigures] = await timed('connections', () => [
      // A source with events counts each end on its own (countNewConnections below): so does the ledger.
      this.#ledger.observe(sockets, unread, passed, read.passed !== undefined),
      this.#figures.observe(sockets, closed, unread),
    ]);
    collection.trackedConnections = this.#ledger.size;
    const namespaces = read.read.map((r) => r.namespace);
    // Peers are named from the inventory as it is after the sockets were read: a container
    // started meanwhile may already have made (and closed) a connection.
    const peerContainers = await inventory.snapshot().catch(() => containers);
    let context: LinkContext | undefined;
    collection.links = await timed('links', () => {
      context = new LinkContext({
        // Ends that passed between two reads name each other as peers, as listed ones do.
        sockets: passed.length > 0 ? [...sockets, ...passed] : sockets,
        namespaces,
        peerContainers,
        hostAddresses,
        ephemeralRange: ephemeralRange ?? DEFAULT_EPHEMERAL_RANGE,
      });
      // A source with events (read.passed) sees every end itself: a peer's is never inferred.
      const counted = countNewConnections(newEnds, context, { countPeers: read.passed === undefined });
      const links = buildContainerLinks(
        sockets,
        namespaces.flatMap((ns) => ns.containers),
        context,
        this.#options,
        counted.byContainer,
      );
      const now = Date.now();
      this.counters.connections.add(links, counted.unattributed, now);
      for (const reason of CONNECT_FAILURE_REASONS) {
        const failed = failedConnects.filter((s) => connectFailureReason(s.connectError) === reason);
        if (failed.length === 0) continue;
        const failures = countNewConnections(failed, context, { countPeers: false });
        this.counters.connectFailures[reason].add(newConnectionsOf(links, failures), failures.unattributed, now);
      }
      const figures = sumLinkFigures(endFigures, context);
      this.counters.figures.add(links, figures, now);
      collection.rtt = linkRtt(links, figures, this.counters.connections);
      return links;
    });
    if (names) {
      collection.peerNames = names.connected(collection.links, this.counters.connections.series());
      collection.nameCounts = names.counts();
    }
    const judged = await timed('policy', () => this.#options.policy.evaluate(collection.links, peerContainers));
    this.counters.unexpectedConnections.add(judged.unexpected, new Map(), Date.now());
    collection.policy = judged;
    collection.up = true;
    if (context) {
      this.#makeEvents({
        newEnds,
        failedConnects,
        context,
        judged,
        containers: peerContainers,
        ...(names ? { namesOf: (id: string, address: string) => names.namesOf(id, address) } : {}),
      });
    }
    return collection;
  }

  /**
   * Makes the events of a collection once its scrape is answered (setImmediate: after the answer
   * is written), one collection after another. They are told, not counted: no metric waits for
   * them, and a failure costs them (said), not the collection.
   */
  #makeEvents(input: EventsInput): void {
    const { events } = this.#options;
    if (!events) return;
    this.#events = this.#events.then(async () => {
      await new Promise((resolve) => setImmediate(resolve));
      const start = performance.now();
      let success = false;
      try {
        await events.observe(input);
        success = true;
      } catch (error) {
        this.#log.warn({ err: error }, 'the events of this collection could not be made');
      } finally {
        this.#lastEvents = { durationSeconds: (performance.now() - start) / 1000, success };
      }
    });
  }

  /**
   * When no container's process exists under --procfs.path, that is not the host's /proc (a
   * container without --pid=host or -v /proc:/host/proc:ro): say so once, not per scrape.
   */
  #checkProcfsView(containers: number, vanished: number): void {
    const blind = containers > 0 && vanished === containers;
    if (blind && !this.#procfsBlind) {
      this.#log.warn(
        { procfs: this.#options.procfsPath, containers },
        "no container's process is visible under --procfs.path: it is not the host's /proc (run with -v /proc:/host/proc:ro and --procfs.path=/host/proc, or --pid=host)",
      );
    }
    this.#procfsBlind = blind;
  }

  /** A container whose sockets could not be read: counted every time, logged once. */
  #countUnreadable(container: Container, error: Error): void {
    this.counters.readErrors.set(container.name, (this.counters.readErrors.get(container.name) ?? 0) + 1);
    if (this.#loggedReadErrors.has(container.id)) return;
    this.#loggedReadErrors.add(container.id);
    this.#log.error(
      { container: container.name, err: error },
      'cannot read the sockets of a container; counted in outpost_container_read_errors_total, logged once',
    );
  }

  /** Counters and log-once marks of containers that are gone do not outlive them. */
  #forgetGone(containers: readonly Container[]): void {
    const ids = new Set(containers.map((c) => c.id));
    const names = new Set(containers.map((c) => c.name));
    for (const id of this.#loggedReadErrors) if (!ids.has(id)) this.#loggedReadErrors.delete(id);
    for (const name of this.counters.readErrors.keys()) if (!names.has(name)) this.counters.readErrors.delete(name);
    const { connections, unexpectedConnections, connectFailures, figures } = this.counters;
    for (const totals of [connections, unexpectedConnections, ...Object.values(connectFailures), figures]) {
      totals.retainContainers(names);
    }
  }
}
