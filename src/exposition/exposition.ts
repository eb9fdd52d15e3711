import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Collection, CollectorCounters } from '../collection/collection.js';
import { STAGES } from '../collection/collection.js';
import { groupKey, type EstablishedGroup } from '../links/linkGroups.js';
import type { ConnectionSeries } from '../connections/connectionTotals.js';
import { ConstFamily, formatLabels } from './constFamily.js';
import { PageWriter } from './pageWriter.js';
import type { PolicyEvaluation } from '../policy/expectedLinks.js';
import { VERSION } from '../base/version.js';

/** The labels of container_tcp_established, and of every family labelled as it is, in their order (establishedLabels). */
const ESTABLISHED_LABELS = ['container', 'image', 'direction', 'remote_address', 'port', 'remote_container'] as const;
type EstablishedLabels = Record<(typeof ESTABLISHED_LABELS)[number], string | number>;

/** The metric contract of docs/architecture.md, rendered from one Collection. */
export class Exposition {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  /** outpost's own families, rendered from each collection; the registry holds the process metrics only. */
  readonly #families: ConstFamily[] = [];

  readonly #listening = this.#gauge(
    'container_tcp_listening',
    'Number of LISTEN sockets of the container bound to address:port (0.0.0.0 and :: are wildcards).',
    ['container', 'image', 'address', 'port'],
  );
  readonly #established = this.#linkFamily(
    'gauge',
    'container_tcp_established',
    'Number of ESTABLISHED TCP connections of the container. direction=inbound: port is the local service port and remote_address the client; outbound: port and remote_address are the server. remote_container names the peer (host for a host process, empty off the host).',
  );
  readonly #sockets = this.#gauge('container_tcp_sockets', 'Number of TCP sockets of the container per state.', [
    'container',
    'image',
    'state',
  ]);
  readonly #folded = this.#gauge(
    'outpost_established_folded_groups',
    'Established groups of the container beyond --established.max-series-per-container, folded into remote_address="~other".',
    ['container'],
  );
  readonly #info = this.#gauge('outpost_container_info', 'Running container known to outpost; always 1.', [
    'container',
    'id',
    'image',
    'compose_project',
    'compose_service',
    'network_mode',
  ]);
  readonly #addressInfo = this.#gauge(
    'outpost_container_address_info',
    "An IP address of a container on a network; always 1. scope=global: other hosts see it as the container's (overlay, macvlan, ipvlan, a routed bridge), so it names peers across hosts; scope=host: private to this host (a masqueraded or internal bridge).",
    ['container', 'network', 'address', 'scope'],
  );
  readonly #hostAddressInfo = this.#gauge(
    'outpost_host_address_info',
    "An address of the Docker host that other hosts may connect to (no loopback, link-local or Docker bridge gateway); always 1. Joins a peer's host address to this instance.",
    ['address'],
  );
  readonly #publishedPortInfo = this.#gauge(
    'outpost_published_port_info',
    'A TCP port the container publishes on the host; always 1. host_address 0.0.0.0 or :: is every host address. Joins a call to host_address:host_port from another host to the container.',
    ['container', 'host_address', 'host_port', 'container_port'],
  );
  readonly #up = this.#gauge('outpost_up', '1 when the Docker API answered and the collection ran, else 0.', []);
  readonly #duration = this.#gauge(
    'outpost_collector_duration_seconds',
    'Duration of each stage of the last collection (events: the last made; they are made after their scrape is answered).',
    ['collector'],
  );
  readonly #success = this.#gauge('outpost_collector_success', '1 when the stage of the last collection succeeded.', ['collector']);
  readonly #buildInfo = this.#gauge('outpost_build_info', 'Build and runtime of outpost; always 1.', ['version', 'node_version', 'source']);
  readonly #sourceCapability = this.#gauge(
    'outpost_source_capability_info',
    'What the running socket source can see on this host; always 1. sockets, sockets_opened_before_start, request_sockets, socket_cookies, connection_events (connections shorter than a scrape), connect_failures, time_wait_events, socket_processes (docs/kernels.md).',
    ['source', 'capability'],
  );
  readonly #readErrors = this.#counter(
    'outpost_container_read_errors_total',
    'Collections in which the sockets of the container could not be read (other than the container exiting).',
    ['container'],
  );
  readonly #connections = this.#linkFamily(
    'counter',
    'container_tcp_connections_total',
    'TCP connections of the container seen since outpost started, each counted once however short it was (from established to time_wait), labelled as container_tcp_established. A series is dropped when its container is gone, or after --connections.retention with no new connection.',
  );
  readonly #unexpectedConnections = this.#linkFamily(
    'counter',
    'container_tcp_unexpected_connections_total',
    'TCP connections of the container that the expected-links policy (--policy.file, outpost.allow.* labels) does not allow, each counted once however short it was; labelled as container_tcp_established.',
  );
  readonly #connectFailures = this.#linkFamily(
    'counter',
    'container_tcp_connect_failures_total',
    'Outbound TCP connects of the container that failed before established since outpost started, by reason: refused (reset by the peer), timeout (no answer to the SYNs), reset, unreachable (an ICMP error), aborted (the process closed the socket first), other; labelled as container_tcp_established. Only the ebpf source sees them.',
  );
  readonly #sentBytes = this.#linkCounter(
    'container_tcp_sent_bytes_total',
    "Bytes the link's connections sent and the peer acknowledged (tcp_info bytes_acked; SYN and FIN count one each), since outpost started; labelled as container_tcp_connections_total. Which sources count which connections: docs/metrics.md.",
  );
  readonly #receivedBytes = this.#linkCounter(
    'container_tcp_received_bytes_total',
    "Bytes the link's connections received (tcp_info bytes_received; the FIN counts one), since outpost started; labelled as container_tcp_connections_total.",
  );
  readonly #retransmits = this.#linkCounter(
    'container_tcp_retransmits_total',
    "Segments the link's connections retransmitted (tcp_info total_retrans), since outpost started; labelled as container_tcp_connections_total.",
  );
  readonly #sentSegments = this.#linkCounter(
    'container_tcp_sent_segments_total',
    "Segments the link's connections sent, retransmitted ones included (tcp_info segs_out), since outpost started: the retransmit ratio's denominator. Labelled as container_tcp_connections_total.",
  );
  readonly #connectSeconds = this.#linkCounter(
    'container_tcp_connect_seconds_total',
    'Time from connect to established of the link\'s outbound connections, summed, since outpost started; divided by the rate of container_tcp_connections_total{direction="outbound"}, the mean connect time. Only the ebpf source sees it.',
  );
  readonly #rtt = this.#linkFamily(
    'gauge',
    'container_tcp_rtt_seconds',
    "Mean smoothed round-trip time (tcp_info rtt) of the link's connections open now or closed since the last collection; absent when there is none. Labelled as container_tcp_connections_total.",
  );
  readonly #unexpectedEstablished = this.#linkFamily(
    'gauge',
    'container_tcp_unexpected_established',
    'Number of ESTABLISHED TCP connections of the container that the expected-links policy does not allow; labelled as container_tcp_established.',
  );
  readonly #peerNameInfo = this.#gauge(
    'container_peer_name_info',
    "A name the container resolved (a DNS answer it received, within the answer's TTL and --dns.grace, or longer while connected) to remote_address, an address it has a link with (open now, or counted in container_tcp_connections_total); always 1. Join it to the link families on container and remote_address.",
    ['container', 'remote_address', 'name'],
  );
  readonly #dnsReading = this.#gauge(
    'outpost_dns_reading',
    '1 when the DNS answers the containers receive are read to name their peers; 0 when a lack of rights stopped it (said once in the log). Absent with --dns.max-names-per-container=0.',
    [],
  );
  readonly #dnsAnswers = this.#counter(
    'outpost_dns_answers_read_total',
    "DNS response messages read from the containers' namespaces since start.",
    [],
  );
  readonly #dnsDroppedPackets = this.#counter(
    'outpost_dns_packets_dropped_total',
    "DNS answer packets lost since start for want of room (a namespace's socket queue of 1 MiB; with eBPF, the ring buffer or the queue behind it); their names are missing.",
    [],
  );
  readonly #dnsDroppedNames = this.#counter(
    'outpost_dns_names_dropped_total',
    'Names not kept since start because the container already had --dns.max-names-per-container in use.',
    [],
  );
  readonly #dnsNamesKept = this.#gauge(
    'outpost_dns_names_kept',
    'Names kept now, over every container (bounded by --dns.max-names-per-container each).',
    [],
  );
  readonly #policyRules = this.#gauge('outpost_policy_rules', 'Expected-links rules in force, by source (file, label).', ['source']);
  readonly #policyLabelErrors = this.#gauge(
    'outpost_policy_label_errors',
    "Entries of the container's outpost.allow.* labels that do not parse; each allows nothing.",
    ['container'],
  );
  readonly #policyPeerAllowed = this.#gauge(
    'outpost_policy_peer_allowed_info',
    'A peer that an expected-links rule covering the container allows by name (a container, or a compose service of project) on port (* every port); always 1. The shipped rules apply it to peers named on another host (README "Many hosts").',
    ['container', 'direction', 'peer', 'project', 'port'],
  );
  readonly #policyReloadSuccess = this.#gauge(
    'outpost_policy_last_reload_success',
    '1 when the last (re)load of --policy.file succeeded; 0: the rules loaded before stay in force.',
    ['file'],
  );
  readonly #policyReloadTime = this.#gauge(
    'outpost_policy_last_reload_success_timestamp_seconds',
    'When the rules of --policy.file in force were loaded, in seconds since the epoch.',
    ['file'],
  );
  readonly #unattributed = this.#counter(
    'outpost_unattributed_connections_total',
    'Connection ends in a shared network namespace (named by the container that owns it, or host) that belong to one of its containers but to which one could not be told; not in container_tcp_connections_total.',
    ['namespace'],
  );
  readonly #tracked = this.#gauge(
    'outpost_connections_tracked',
    'Connection ends remembered between collections to count each connection once; bounded by the sockets the kernel lists.',
    [],
  );
  readonly #sourceLosses = this.#counter(
    'outpost_source_records_lost_total',
    'What the ebpf source could not keep or pass on since it started, by reason: ring_buffer_full (connection events the kernel had no room for), queue_full (events dropped between two scrapes), tracked_map_full (sockets not tracked: the 65,536 known at once were taken), state_changes_skipped (state changes none of its three state-change programs ran for: the kernel skips a program already running on that CPU, and the second and third handle what the first was skipped for, so this stays 0 but where all three were; the sockets are listed again from the open files, their events are lost). Past 0, container_tcp_connections_total and the sockets listed may miss some.',
    ['reason'],
  );
  readonly #parseErrors = this.#counter(
    'outpost_parse_errors_total',
    'Lines of the kernel TCP tables that did not parse and were skipped.',
    [],
  );

  #rendering: Promise<unknown> = Promise.resolve();
  #lastPageBytes = 0;

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry });
      // Gauges named like counters: promtool check metrics rejects them, and the same numbers
      // are in nodejs_active_{handles,requests,resources} by type.
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
        this.registry.removeSingleMetric(name);
      }
    }
  }

  #linkCounter(name: string, help: string): ConstFamily {
    return this.#linkFamily('counter', name, help);
  }

  /** A family with a series per link, labelled as container_tcp_established (its labels written once a render: linkLabels). */
  #linkFamily(type: 'counter' | 'gauge', name: string, help: string): ConstFamily {
    return this.#family(type, name, help, ESTABLISHED_LABELS);
  }

  #counter(name: string, help: string, labelNames: readonly string[]): ConstFamily {
    return this.#family('counter', name, help, labelNames);
  }

  /** Families are written in the order they are made here: the contract's order. */
  #family(type: 'counter' | 'gauge', name: string, help: string, labelNames: readonly string[]): ConstFamily {
    const family = new ConstFamily({ name, help, type, labelNames });
    this.#families.push(family);
    return family;
  }

  #gauge(name: string, help: string, labelNames: readonly string[]): ConstFamily {
    return this.#family('gauge', name, help, labelNames);
  }

  /** The text exposition of `collection`, as bytes. Renders one at a time: the families are shared state. */
  render(collection: Collection, counters: CollectorCounters): Promise<Buffer> {
    const next = this.#rendering.then(async () => {
      this.#set(collection, counters);
      // Room for the last page and a little more: it is seldom copied to grow.
      const page = new PageWriter(this.#lastPageBytes * 1.1);
      this.#families.forEach((family, i) => {
        if (i > 0) page.write('\n');
        family.writeTo(page);
      });
      // prom-client's families come after outpost's, as they did when all were in one registry.
      if (this.registry.getMetricsAsArray().length > 0) page.write(`\n${await this.registry.metrics()}`);
      const bytes = page.bytes();
      this.#lastPageBytes = bytes.length;
      return bytes;
    });
    this.#rendering = next.catch(() => undefined);
    return next;
  }

  #set(collection: Collection, counters: CollectorCounters): void {
    for (const family of this.#families) family.reset();
    const labelsOf = linkLabels();

    this.#up.set({}, collection.up ? 1 : 0);
    for (const address of collection.hostAddresses) this.#hostAddressInfo.set({ address }, 1);
    this.#tracked.set({}, collection.trackedConnections);
    this.#buildInfo.set({ version: VERSION, node_version: process.version, source: collection.source }, 1);
    for (const capability of collection.sourceCapabilities) this.#sourceCapability.set({ source: collection.source, capability }, 1);
    for (const stage of STAGES) {
      const result = collection.stages[stage];
      this.#duration.set({ collector: stage }, result.durationSeconds);
      this.#success.set({ collector: stage }, result.success ? 1 : 0);
    }
    for (const c of collection.containers) {
      this.#info.set(
        {
          container: c.name,
          id: c.id,
          image: c.image,
          compose_project: c.composeProject,
          compose_service: c.composeService,
          network_mode: c.networkMode,
        },
        1,
      );
      for (const { network, address, scope } of c.addresses) this.#addressInfo.set({ container: c.name, network, address, scope }, 1);
      for (const p of c.publishedPorts) {
        this.#publishedPortInfo.set(
          { container: c.name, host_address: p.hostAddress, host_port: p.hostPort, container_port: p.containerPort },
          1,
        );
      }
    }
    for (const { container, listening, established, foldedGroups, states } of collection.links) {
      const base = { container: container.name, image: container.image };
      this.#folded.set({ container: container.name }, foldedGroups);
      for (const l of listening) this.#listening.set({ ...base, address: l.address, port: l.port }, l.count);
      for (const e of established) this.#established.add(labelsOf(container.name, container.image, e), e.count);
      for (const [state, count] of Object.entries(states)) this.#sockets.set({ ...base, state }, count);
    }
    const addSeries = (family: ConstFamily, totals: { series(): Iterable<ConnectionSeries> }) => {
      for (const { container, image, group, total } of totals.series()) family.add(labelsOf(container, image, group), total);
    };
    addSeries(this.#connections, counters.connections);
    addSeries(this.#unexpectedConnections, counters.unexpectedConnections);
    for (const [reason, totals] of Object.entries(counters.connectFailures)) {
      for (const { container, image, group, total } of totals.series())
        this.#connectFailures.add(formatLabels({ ...establishedLabels(container, image, group), reason }), total);
    }
    // Each link's record once, into every family of link health.
    for (const { container, image, group, totals, hasConnectTime } of counters.figures.entries()) {
      const labels = labelsOf(container, image, group);
      this.#sentBytes.add(labels, totals.sentBytes);
      this.#receivedBytes.add(labels, totals.receivedBytes);
      this.#retransmits.add(labels, totals.retransmits);
      this.#sentSegments.add(labels, totals.sentSegments);
      if (hasConnectTime) this.#connectSeconds.add(labels, totals.connectSeconds);
    }
    for (const { container, group, seconds } of collection.rtt) this.#rtt.add(labelsOf(container.name, container.image, group), seconds);
    this.#setPolicy(collection.policy, labelsOf);
    this.#setNames(collection);
    for (const [namespace, total] of counters.connections.unattributed()) this.#unattributed.set({ namespace }, total);
    for (const [container, count] of counters.readErrors) this.#readErrors.set({ container }, count);
    this.#parseErrors.set({}, counters.parseErrors);
    for (const [reason, total] of Object.entries(collection.sourceLosses ?? {})) this.#sourceLosses.set({ reason }, total);
  }

  #setNames({ peerNames, nameCounts }: Collection): void {
    for (const { container, remoteAddress, name } of peerNames)
      this.#peerNameInfo.set({ container: container.name, remote_address: remoteAddress, name }, 1);
    if (!nameCounts) return;
    this.#dnsReading.set({}, nameCounts.reading ? 1 : 0);
    this.#dnsAnswers.set({}, nameCounts.answers);
    this.#dnsDroppedPackets.set({}, nameCounts.droppedPackets);
    this.#dnsDroppedNames.set({}, nameCounts.droppedNames);
    this.#dnsNamesKept.set({}, nameCounts.kept);
  }

  #setPolicy(policy: PolicyEvaluation | undefined, labelsOf: LinkLabels): void {
    if (!policy) return;
    for (const { container, established } of policy.unexpected) {
      for (const e of established) this.#unexpectedEstablished.add(labelsOf(container.name, container.image, e), e.count);
    }
    for (const [source, n] of Object.entries(policy.rules)) this.#policyRules.set({ source }, n);
    for (const [container, n] of policy.labelErrors) this.#policyLabelErrors.set({ container }, n);
    for (const a of policy.namedPeers)
      this.#policyPeerAllowed.set({ container: a.container, direction: a.direction, peer: a.peer, project: a.project, port: a.port }, 1);
    if (policy.file) {
      const file = { file: policy.file.path };
      this.#policyReloadSuccess.set(file, policy.file.lastReloadSuccess ? 1 : 0);
      this.#policyReloadTime.set(file, policy.file.loadedAtMs / 1000);
    }
  }
}

type LinkLabels = (container: string, image: string, g: Omit<EstablishedGroup, 'count'>) => string;

/**
 * The written labels of a link, made once however many families have a series of it: by group
 * object (a counter's series keeps its own from one render to the next), else by its labels.
 */
const writtenByGroup = new WeakMap<object, { container: string; image: string; labels: string }>();
function linkLabels(): LinkLabels {
  const written = new Map<string, string>();
  return (container, image, g) => {
    const known = writtenByGroup.get(g);
    if (known?.container === container && known.image === image) return known.labels;
    const key = `${container}\u0000${image}\u0000${groupKey(g)}`;
    let labels = written.get(key);
    if (labels === undefined) {
      labels = formatLabels(establishedLabels(container, image, g));
      written.set(key, labels);
    }
    writtenByGroup.set(g, { container, image, labels });
    return labels;
  };
}

/** The labels of container_tcp_established, shared by every series labelled as it is. */
function establishedLabels(container: string, image: string, g: Omit<EstablishedGroup, 'count'>): EstablishedLabels {
  return { container, image, direction: g.direction, remote_address: g.remoteAddress, port: g.port, remote_container: g.remoteContainer };
}
