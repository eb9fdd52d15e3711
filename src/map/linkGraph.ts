import type { Container } from '../inventory/container.js';
import { joinedContainerId } from '../inventory/container.js';
import { byKey } from '../base/byKey.js';
import type { ContainerLinks } from '../links/containerLinks.js';
import type { EstablishedGroup } from '../links/linkGroups.js';
import type { ConnectionSeries } from '../connections/connectionTotals.js';
import { HOST_PEER } from '../links/peers.js';
import { edgeId, type GraphEdge, type GraphNode, type LinkGraph } from './graphModel.js';

/** What one collection and the counters kept across collections say of the host's links. */
export interface LinkGraphInput {
  up: boolean;
  atMs: number;
  /** Every running container known. */
  containers: readonly Container[];
  /** The containers whose sockets were read, with their listening and open links. */
  links: readonly Pick<ContainerLinks, 'container' | 'listening' | 'established'>[];
  /** container_tcp_connections_total. */
  counted: Iterable<ConnectionSeries>;
  /** The unexpected connections open now, per container (container_tcp_unexpected_established). */
  unexpectedOpen: readonly { container: Container; established: readonly EstablishedGroup[] }[];
  /** container_tcp_unexpected_connections_total. */
  unexpectedCounted: Iterable<ConnectionSeries>;
  /** container_tcp_sent_bytes_total, _received_bytes_total and _retransmits_total. */
  sentBytes: Iterable<ConnectionSeries>;
  receivedBytes: Iterable<ConnectionSeries>;
  retransmits: Iterable<ConnectionSeries>;
  /** container_tcp_rtt_seconds. */
  rtt: readonly { container: Container; group: Omit<EstablishedGroup, 'count'>; seconds: number }[];
  /** The names containers resolved to the addresses they are connected to (container_peer_name_info). */
  peerNames?: readonly { remoteAddress: string; name: string }[];
}

type Measure = 'open' | 'counted' | 'unexpectedOpen' | 'unexpectedCounted' | 'bytesToServer' | 'bytesToClient' | 'retransmits';
const MEASURES: readonly Measure[] = [
  'open',
  'counted',
  'unexpectedOpen',
  'unexpectedCounted',
  'bytesToServer',
  'bytesToClient',
  'retransmits',
];
/** Each end retransmits its own segments: the edge's are both ends'. The rest is each connection seen at both ends: the larger. */
const SUMMED: ReadonlySet<Measure> = new Set<Measure>(['retransmits']);

/** The node of a link's other end: a container of this host, the host, or an address off it. */
function peerNodeId(g: Omit<EstablishedGroup, 'count'>): string {
  if (g.remoteContainer === HOST_PEER) return HOST_PEER;
  if (g.remoteContainer) return `container:${g.remoteContainer}`;
  return `peer:${g.remoteAddress}`;
}

/** A peer off the host, labelled by the first of the names it was resolved from, else by its address. */
function externalNode(id: string, address: string, names: ReadonlySet<string> | undefined): GraphNode {
  const sorted = [...(names ?? [])].sort();
  const node: GraphNode = { id, kind: 'external', label: sorted[0] ?? address, group: '', addresses: [{ network: '', address }] };
  if (sorted.length > 0) node.names = sorted;
  return node;
}

/** A container's group: its compose project, else the group of the container whose network it joined, else its network. */
function groupOf(c: Container, byId: ReadonlyMap<string, Container>, depth = 0): string {
  if (c.composeProject) return `project ${c.composeProject}`;
  const joined = joinedContainerId(c);
  const owner = joined ? byId.get(joined) : undefined;
  if (owner && depth < 4) return groupOf(owner, byId, depth + 1);
  return `network ${c.addresses[0]?.network ?? c.networkMode}`;
}

/**
 * The host's link map: a node per container, for the host and for each peer off the host; an edge
 * per client, server and service port. A connection between two containers of this host is seen
 * at both ends (the client's outbound link and the server's inbound one): the edge counts it once,
 * as the larger of the two ends' counts. Only running containers are drawn.
 */
export function buildLinkGraph(input: LinkGraphInput): LinkGraph {
  const byId = new Map(input.containers.map((c) => [c.id, c]));
  const nodes = new Map<string, GraphNode>();
  const containerNode = (c: Container): GraphNode =>
    byKey(nodes, `container:${c.name}`, () => ({
      id: `container:${c.name}`,
      kind: 'container',
      label: c.name,
      group: groupOf(c, byId),
      image: c.image,
      composeService: c.composeService,
      networkMode: c.networkMode,
      addresses: c.addresses.map((a) => ({ network: a.network, address: a.address })),
      listening: [],
    }));
  const running = new Map(input.containers.map((c) => [c.name, c]));
  const namesOf = new Map<string, Set<string>>();
  for (const { remoteAddress, name } of input.peerNames ?? []) byKey(namesOf, remoteAddress, () => new Set()).add(name);
  for (const c of input.containers) containerNode(c);
  for (const { container, listening } of input.links) containerNode(container).listening = listening.map((l) => ({ ...l }));

  // Per edge, per end (client, server): the sums of that end's groups.
  const ends = new Map<
    string,
    {
      edge: Omit<GraphEdge, Measure | 'rttSeconds'>;
      client: Record<Measure, number>;
      server: Record<Measure, number>;
      rtt: { client?: number; server?: number };
    }
  >();
  const add = (container: Container | string, g: Omit<EstablishedGroup, 'count'>, measure: Measure | 'rtt', count: number) => {
    // The map shows what runs: the links of a container that stopped since stay in the counters
    // (for --connections.retention), not on the map.
    const own = typeof container === 'string' ? running.get(container) : container;
    const peer = peerNodeId(g);
    if (!own || (peer.startsWith('container:') && !running.has(g.remoteContainer))) return;
    const self = containerNode(own).id;
    byKey(nodes, peer, () =>
      peer === HOST_PEER
        ? { id: peer, kind: 'host', label: HOST_PEER, group: '' }
        : externalNode(peer, g.remoteAddress, namesOf.get(g.remoteAddress)),
    );
    const [source, target, end] = g.direction === 'inbound' ? [peer, self, 'server' as const] : [self, peer, 'client' as const];
    const id = edgeId(source, target, g.port);
    const zero = () => Object.fromEntries(MEASURES.map((m) => [m, 0])) as Record<Measure, number>;
    const sums = byKey(ends, id, () => ({ edge: { id, source, target, port: g.port }, client: zero(), server: zero(), rtt: {} }));
    if (measure === 'rtt') sums.rtt[end] = count;
    else sums[end][measure] += count;
  };
  // Which way a counter of one end goes: a client sends to the server, a server to the client.
  const byDirection = (s: ConnectionSeries, sent: boolean) =>
    (s.group.direction === 'inbound') === sent ? ('bytesToClient' as const) : ('bytesToServer' as const);
  for (const { container, established } of input.links) for (const g of established) add(container, g, 'open', g.count);
  for (const s of input.counted) add(s.container, s.group, 'counted', s.total);
  for (const { container, established } of input.unexpectedOpen) for (const g of established) add(container, g, 'unexpectedOpen', g.count);
  for (const s of input.unexpectedCounted) add(s.container, s.group, 'unexpectedCounted', s.total);
  for (const s of input.sentBytes) add(s.container, s.group, byDirection(s, true), s.total);
  for (const s of input.receivedBytes) add(s.container, s.group, byDirection(s, false), s.total);
  for (const s of input.retransmits) add(s.container, s.group, 'retransmits', s.total);
  for (const r of input.rtt) add(r.container, r.group, 'rtt', r.seconds);

  const edges: GraphEdge[] = [...ends.values()].map(({ edge, client, server, rtt }) => {
    const merged: GraphEdge = {
      ...edge,
      ...(Object.fromEntries(MEASURES.map((m) => [m, SUMMED.has(m) ? client[m] + server[m] : Math.max(client[m], server[m])])) as Record<
        Measure,
        number
      >),
    };
    const seconds = rtt.client ?? rtt.server;
    if (seconds !== undefined) merged.rttSeconds = seconds;
    return merged;
  });
  const byName = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  return {
    up: input.up,
    collectedAt: new Date(input.atMs).toISOString(),
    nodes: [...nodes.values()].sort(byName),
    edges: edges.sort(byName),
  };
}
