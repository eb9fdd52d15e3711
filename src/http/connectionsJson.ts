import type { Collection } from '../collection/collection.js';
import { byKey } from '../base/byKey.js';
import { groupKey, type EstablishedGroup } from '../links/linkGroups.js';
import type { ConnectionSeries } from '../connections/connectionTotals.js';
import { namesByLink } from '../names/resolvedNames.js';

/** One link of a container: open connections now, and connections first seen since the last collection. */
export interface ConnectionsLink {
  address: string;
  port: number | string;
  direction: string;
  remote_container: string;
  /** Open (ESTABLISHED) now. */
  count: number;
  /** First seen in this collection, however short (they may be closed already). */
  new_connections: number;
  /** Counted since outpost started, however short: container_tcp_connections_total (0 once over its retention). */
  connections_total: number;
  /** container_tcp_sent_bytes_total, _received_bytes_total and _retransmits_total of the link (0 where the source has no figures). */
  sent_bytes_total: number;
  received_bytes_total: number;
  retransmits_total: number;
  /** container_tcp_rtt_seconds of the link; null when no connection of it was seen with one in the last collection. */
  rtt_seconds: number | null;
  /** The names the container resolved to the address (container_peer_name_info); empty when none. */
  names: string[];
}

/** The counters kept across collections that /connections shows per link. */
export interface LinkTotals {
  connections: Iterable<ConnectionSeries>;
  sentBytes: Iterable<ConnectionSeries>;
  receivedBytes: Iterable<ConnectionSeries>;
  retransmits: Iterable<ConnectionSeries>;
}

/**
 * The ancestor's /connections shape, [{name, artefact, listening, established}], kept so its
 * clients keep working; the added fields (count, direction, remote_container, ...) they ignore.
 * A link made only of short connections is listed with count 0, as long as its counter lasts
 * (--connections.retention).
 */
export interface ConnectionsEntry {
  name: string;
  artefact: string;
  id: string;
  listening: { address: string; port: number; count: number }[];
  established: ConnectionsLink[];
}

type Total = 'connections_total' | 'sent_bytes_total' | 'received_bytes_total' | 'retransmits_total';

export function connectionsJson(collection: Collection, counted: LinkTotals): ConnectionsEntry[] {
  const totals = new Map<string, { total: Total; series: ConnectionSeries }[]>();
  const keep = (total: Total, all: Iterable<ConnectionSeries>) => {
    for (const series of all) byKey(totals, series.container, () => []).push({ total, series });
  };
  keep('connections_total', counted.connections);
  keep('sent_bytes_total', counted.sentBytes);
  keep('received_bytes_total', counted.receivedBytes);
  keep('retransmits_total', counted.retransmits);
  const rtt = new Map<string, { group: Omit<EstablishedGroup, 'count'>; seconds: number }[]>();
  for (const r of collection.rtt) byKey(rtt, r.container.id, () => []).push(r);
  const namesOf = namesByLink(collection.peerNames);
  return collection.links.map(({ container, listening, established, newConnections }) => {
    const links = new Map<string, ConnectionsLink>();
    const linkOf = (g: Omit<EstablishedGroup, 'count'>) =>
      byKey(links, groupKey(g), () => ({
        address: g.remoteAddress,
        port: g.port,
        direction: g.direction,
        remote_container: g.remoteContainer,
        count: 0,
        new_connections: 0,
        connections_total: 0,
        sent_bytes_total: 0,
        received_bytes_total: 0,
        retransmits_total: 0,
        rtt_seconds: null as number | null,
        names: namesOf(container.name, g.remoteAddress),
      }));
    for (const g of established) linkOf(g).count += g.count;
    for (const g of newConnections) linkOf(g).new_connections += g.count;
    for (const { total, series } of totals.get(container.name) ?? []) linkOf(series.group)[total] += series.total;
    for (const r of rtt.get(container.id) ?? []) linkOf(r.group).rtt_seconds = r.seconds;
    return {
      name: container.name,
      artefact: container.image,
      id: container.id,
      listening: listening.map((l) => ({ address: l.address, port: l.port, count: l.count })),
      established: [...links.values()],
    };
  });
}
