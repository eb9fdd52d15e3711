import type { Container } from '../inventory/container.js';
import type { NetNamespace } from '../namespaces/netNamespaces.js';
import { TCP_STATES, type TcpState } from '../sockets/tcpSocket.js';
import type { AttributedSocket } from '../attribution/attribution.js';
import { DirectionClassifier, type PortRange } from './classification.js';
import { PeerResolver, type Peer } from './peers.js';
import { groupKey, type EstablishedGroup, type ListeningGroup } from './linkGroups.js';
import { applySeriesBudget } from './seriesBudget.js';
import { byKey } from '../base/byKey.js';

/** What one container listens on, whom it is connected to, and its sockets per state. */
export interface ContainerLinks {
  container: Container;
  listening: ListeningGroup[];
  established: EstablishedGroup[];
  /** Established groups over the series budget, folded into remote_address="~other". */
  foldedGroups: number;
  states: Record<TcpState, number>;
  /** Connections first seen in this collection, however short, grouped as `established` (not folded). */
  newConnections: EstablishedGroup[];
}

export interface LinkOptions {
  /** Most established series per container before the rest fold. */
  maxSeriesPerContainer: number;
}

export interface LinkContextInput {
  /** Every socket collected, from every namespace read. */
  sockets: readonly AttributedSocket[];
  /** The namespaces read. */
  namespaces: readonly NetNamespace[];
  /** Every running container known, for naming peers by address and published port. */
  peerContainers: readonly Container[];
  hostAddresses: Iterable<string>;
  /** The ports the kernel hands to outgoing connections. */
  ephemeralRange?: PortRange;
}

/** A connection end as the links group it. */
export interface DescribedEnd {
  group: Omit<EstablishedGroup, 'count'>;
  /** groupKey(group), made once: every stage after the links groups by it. */
  key: string;
  peer: Peer;
}

/** How one collection's connections are classified and their peers named; built once per collection. */
export class LinkContext {
  readonly classifier: DirectionClassifier;
  readonly peers: PeerResolver;

  constructor(input: LinkContextInput) {
    this.classifier = new DirectionClassifier(input.sockets, input.ephemeralRange);
    this.peers = new PeerResolver(input.sockets, input.peerContainers, input.hostAddresses, input.namespaces);
  }

  /** Each socket's description, made once: the links and the figures of a collection both ask for it. */
  // A Map, not a WeakMap: the context lives for one collection, and a WeakMap's entries cost the GC more.
  readonly #described = new Map<AttributedSocket, DescribedEnd>();

  /** The labels of a connection end (which way, with whom, on which service port), their key, and its peer. */
  describe(socket: AttributedSocket): DescribedEnd {
    let described = this.#described.get(socket);
    if (!described) {
      const { direction, port } = this.classifier.classify(socket);
      const peer = this.peers.peerOf(socket, direction);
      const group = { direction, remoteAddress: socket.remoteAddress, port, remoteContainer: peer.name };
      described = { group, key: groupKey(group), peer };
      this.#described.set(socket, described);
    }
    return described;
  }
}

function emptyStates(): Record<TcpState, number> {
  return Object.fromEntries(TCP_STATES.map((s) => [s, 0])) as Record<TcpState, number>;
}

/**
 * Classifies and counts the attributed sockets into one ContainerLinks per container of
 * `containers` (every container whose namespace was read, sockets or not), sorted by name.
 */
export function buildContainerLinks(
  sockets: readonly AttributedSocket[],
  containers: readonly Container[],
  context: LinkContext,
  options: LinkOptions,
  /** Per container id, its connections first seen in this collection (countNewConnections). */
  newConnections: ReadonlyMap<string, EstablishedGroup[]> = new Map(),
): ContainerLinks[] {
  const links = new Map<
    string,
    { links: ContainerLinks; listening: Map<string, ListeningGroup>; established: Map<string, EstablishedGroup> }
  >();
  for (const container of containers) {
    links.set(container.id, {
      links: { container, listening: [], established: [], foldedGroups: 0, states: emptyStates(), newConnections: [] },
      listening: new Map(),
      established: new Map(),
    });
  }

  for (const socket of sockets) {
    const entry = socket.container && links.get(socket.container.id);
    if (!entry) continue;
    entry.links.states[socket.state]++;
    if (socket.state === 'listen') {
      byKey(entry.listening, `${socket.localAddress}|${socket.localPort}`, () => ({
        address: socket.localAddress,
        port: socket.localPort,
        count: 0,
      })).count++;
    } else if (socket.state === 'established') {
      const { group, key } = context.describe(socket);
      byKey(entry.established, key, () => ({ ...group, count: 0 })).count++;
    }
  }

  return [...links.values()]
    .map(({ links: l, listening, established }) => {
      const budgeted = applySeriesBudget([...established.values()], options.maxSeriesPerContainer);
      return {
        ...l,
        listening: [...listening.values()].sort((a, b) => compare(a.address, b.address) || compare(a.port, b.port)),
        foldedGroups: budgeted.folded,
        established: budgeted.groups.sort(compareGroups),
        newConnections: [...(newConnections.get(l.container.id) ?? [])].sort(compareGroups),
      };
    })
    .sort((a, b) => compare(a.container.name, b.container.name));
}

const compare = (a: string | number, b: string | number) => (a < b ? -1 : a > b ? 1 : 0);

function compareGroups(a: EstablishedGroup, b: EstablishedGroup): number {
  return (
    compare(a.direction, b.direction) ||
    compare(a.remoteAddress, b.remoteAddress) ||
    compare(a.port, b.port) ||
    compare(a.remoteContainer, b.remoteContainer)
  );
}
