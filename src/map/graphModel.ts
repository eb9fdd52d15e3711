/**
 * The link map's graph, as /map/graph.json serves it and the page draws it. DOM-free and
 * Node-free: the page's bundle and the server both use it.
 */

export type NodeKind = 'container' | 'host' | 'external' | 'group';

export interface GraphNode {
  /** `container:<name>`, `host`, `peer:<address>`, or `group:<group>` when grouped. */
  id: string;
  kind: NodeKind;
  label: string;
  /** `project <name>` (compose), else `network <name>`; '' for the host and peers off the host. */
  group: string;
  image?: string;
  composeService?: string;
  networkMode?: string;
  addresses?: { network: string; address: string }[];
  listening?: { address: string; port: number; count: number }[];
  /** A group node: the containers folded into it. */
  members?: number;
  /** A peer off the host: the names containers resolved to its address (container_peer_name_info); its label is the first. */
  names?: string[];
}

/** Connections from a client to a server's port, merged from both ends when both are on this host. */
export interface GraphEdge {
  /** `<source>→<target>:<port>`. */
  id: string;
  /** The client's node. */
  source: string;
  /** The server's node. */
  target: string;
  port: number | string;
  /** ESTABLISHED now. */
  open: number;
  /** Counted since outpost started, however short (container_tcp_connections_total, within its retention). */
  counted: number;
  /** Of those, what the expected-links policy does not allow. */
  unexpectedOpen: number;
  unexpectedCounted: number;
  /** Bytes from client to server and back since outpost started (container_tcp_{sent,received}_bytes_total, the larger end's). */
  bytesToServer: number;
  bytesToClient: number;
  /** Segments retransmitted, both ends summed (container_tcp_retransmits_total). */
  retransmits: number;
  /** Mean smoothed RTT of its connections in the last collection (the client's, else the server's); absent when none. */
  rttSeconds?: number;
}

export interface LinkGraph {
  /** The Docker API answered. */
  up: boolean;
  /** When the collection was made (ISO 8601). */
  collectedAt: string;
  nodes: GraphNode[];
  edges: GraphEdge[];
}

/** Past this, a graph is drawn one node per group (issue #12: 200 containers and 1,000 links stay drawn one by one). */
export const GRAPH_LIMITS = { nodes: 300, edges: 1500 } as const;

export function edgeId(source: string, target: string, port: number | string): string {
  return `${source}→${target}:${port}`;
}

export function isUnexpected(e: GraphEdge): boolean {
  return e.unexpectedOpen > 0 || e.unexpectedCounted > 0;
}

export function exceedsLimits(g: Pick<LinkGraph, 'nodes' | 'edges'>): boolean {
  return g.nodes.length > GRAPH_LIMITS.nodes || g.edges.length > GRAPH_LIMITS.edges;
}

/** Adds `more` into the edge of `byId` with the same id (or a copy of it). */
export function mergeEdge(byId: Map<string, GraphEdge>, more: GraphEdge): void {
  const edge = byId.get(more.id);
  if (!edge) {
    byId.set(more.id, { ...more });
    return;
  }
  edge.open += more.open;
  edge.counted += more.counted;
  edge.unexpectedOpen += more.unexpectedOpen;
  edge.unexpectedCounted += more.unexpectedCounted;
  edge.bytesToServer += more.bytesToServer;
  edge.bytesToClient += more.bytesToClient;
  edge.retransmits += more.retransmits;
  // A group's link is as slow as its slowest.
  if (more.rttSeconds !== undefined) edge.rttSeconds = Math.max(edge.rttSeconds ?? 0, more.rttSeconds);
}

/**
 * Bytes a second each way per edge between two graphs of the same host (the page's last two
 * refreshes): what the counters grew by over the time between the collections. An edge new in
 * `now`, or whose counters went down (outpost restarted), has no rate yet.
 */
export function edgeRates(before: LinkGraph | undefined, now: LinkGraph): Map<string, number> {
  const rates = new Map<string, number>();
  if (!before) return rates;
  const seconds = (Date.parse(now.collectedAt) - Date.parse(before.collectedAt)) / 1000;
  if (!(seconds > 0)) return rates;
  const previous = new Map(before.edges.map((e) => [e.id, e]));
  for (const e of now.edges) {
    const p = previous.get(e.id);
    if (!p) continue;
    const grown = e.bytesToServer - p.bytesToServer + (e.bytesToClient - p.bytesToClient);
    if (e.bytesToServer >= p.bytesToServer && e.bytesToClient >= p.bytesToClient) rates.set(e.id, grown / seconds);
  }
  return rates;
}

/** "1.5 MB/s", in powers of 1000 as Grafana's bytes/s unit shows it. */
export function formatByteRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? String(Math.round(value)) : value.toFixed(value < 10 ? 1 : 0)} ${units[unit] ?? ''}`;
}

/**
 * One node per group (compose project or network), edges between groups merged by port and
 * summed; the host and peers off the host stay themselves.
 */
export function groupGraph(g: LinkGraph): LinkGraph {
  const nodeOf = new Map<string, string>();
  const nodes = new Map<string, GraphNode>();
  for (const n of g.nodes) {
    if (!n.group) {
      nodeOf.set(n.id, n.id);
      nodes.set(n.id, n);
      continue;
    }
    const id = `group:${n.group}`;
    nodeOf.set(n.id, id);
    const group = nodes.get(id) ?? { id, kind: 'group', label: n.group, group: '', members: 0 };
    group.members = (group.members ?? 0) + 1;
    nodes.set(id, group);
  }
  const edges = new Map<string, GraphEdge>();
  for (const e of g.edges) {
    const source = nodeOf.get(e.source) ?? e.source;
    const target = nodeOf.get(e.target) ?? e.target;
    mergeEdge(edges, { ...e, id: edgeId(source, target, e.port), source, target });
  }
  return { ...g, nodes: [...nodes.values()], edges: [...edges.values()] };
}

/**
 * The nodes whose name, group, image, address or resolved name contains `text` (any case), the nodes linked to
 * them, and the edges that touch a match. Empty text: the whole graph.
 */
export function filterGraph(g: LinkGraph, text: string): LinkGraph {
  const needle = text.trim().toLowerCase();
  if (!needle) return g;
  const matches = new Set(
    g.nodes
      .filter((n) =>
        [n.label, n.group, n.image ?? '', ...(n.addresses ?? []).map((a) => a.address), ...(n.names ?? [])].some((v) =>
          v.toLowerCase().includes(needle),
        ),
      )
      .map((n) => n.id),
  );
  const edges = g.edges.filter((e) => matches.has(e.source) || matches.has(e.target));
  const kept = new Set([...matches, ...edges.flatMap((e) => [e.source, e.target])]);
  return { ...g, nodes: g.nodes.filter((n) => kept.has(n.id)), edges };
}

/** Where GET /events lists a link's events (whichever end's container tells them); undefined when neither end is a container. */
export function edgeEventsHref(edge: Pick<GraphEdge, 'source' | 'target' | 'port'>): string | undefined {
  const nameOf = (id: string) =>
    id === 'host'
      ? 'host'
      : id.startsWith('container:')
        ? id.slice('container:'.length)
        : id.startsWith('peer:')
          ? id.slice('peer:'.length)
          : undefined;
  const [client, server] = [nameOf(edge.source), nameOf(edge.target)];
  if (client === undefined || server === undefined) return undefined;
  if (!edge.source.startsWith('container:') && !edge.target.startsWith('container:')) return undefined;
  return `/events?${new URLSearchParams({ between: `${client},${server}`, port: String(edge.port) }).toString()}`;
}
