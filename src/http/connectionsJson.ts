import type { Collection } from '../collection/collection.js';
import { byKey } from '../base/byKey.js';
import { groupKey, type EstablishedGroup } from '../links/linkGroups.js';
import type { ConnectionSeries } from '../connections/connectionTotals.js';

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

export function connectionsJson(collection: Collection, counted: Iterable<ConnectionSeries>): ConnectionsEntry[] {
  const totals = new Map<string, ConnectionSeries[]>();
  for (const s of counted) byKey(totals, s.container, () => []).push(s);
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
      }));
    for (const g of established) linkOf(g).count += g.count;
    for (const g of newConnections) linkOf(g).new_connections += g.count;
    for (const s of totals.get(container.name) ?? []) linkOf(s.group).connections_total += s.total;
    return {
      name: container.name,
      artefact: container.image,
      id: container.id,
      listening: listening.map((l) => ({ address: l.address, port: l.port, count: l.count })),
      established: [...links.values()],
    };
  });
}
