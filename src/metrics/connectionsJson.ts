import type { Collection } from '../collection.js';

/**
 * The ancestor's /connections shape, [{name, artefact, listening, established}], kept so its
 * clients keep working; the added fields (count, direction, remote_container, ...) they ignore.
 */
export interface ConnectionsEntry {
  name: string;
  artefact: string;
  id: string;
  listening: { address: string; port: number; count: number }[];
  established: { address: string; port: number | string; direction: string; remote_container: string; count: number }[];
}

export function connectionsJson(collection: Collection): ConnectionsEntry[] {
  return collection.links.map(({ container, listening, established }) => ({
    name: container.name,
    artefact: container.image,
    id: container.id,
    listening: listening.map((l) => ({ address: l.address, port: l.port, count: l.count })),
    established: established.map((e) => ({
      address: e.remoteAddress,
      port: e.port,
      direction: e.direction,
      remote_container: e.remoteContainer,
      count: e.count,
    })),
  }));
}
