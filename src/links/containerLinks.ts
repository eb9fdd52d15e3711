import type { Container } from '../docker/container.js';
import { TCP_STATES, type TcpState } from '../sockets/tcpSocket.js';
import type { AttributedSocket } from './attribution.js';
import { DirectionClassifier, EPHEMERAL_PORT, type Direction, type PortRange } from './classification.js';
import { PeerResolver } from './peers.js';
import { applySeriesBudget } from './seriesBudget.js';

export interface ListeningGroup {
  address: string;
  port: number;
  count: number;
}

export interface EstablishedGroup {
  direction: Direction;
  /** The client (inbound) or the server (outbound). */
  remoteAddress: string;
  /** The service port: local for inbound, remote for outbound. */
  port: number | typeof EPHEMERAL_PORT;
  remoteContainer: string;
  count: number;
}

/** What one container listens on, whom it is connected to, and its sockets per state. */
export interface ContainerLinks {
  container: Container;
  listening: ListeningGroup[];
  established: EstablishedGroup[];
  /** Established groups over the series budget, folded into remote_address="~other". */
  foldedGroups: number;
  states: Record<TcpState, number>;
}

export interface LinkOptions {
  /** Most established series per container before the rest fold. */
  maxSeriesPerContainer: number;
  /** The ports the kernel hands to outgoing connections. */
  ephemeralRange?: PortRange;
}

function emptyStates(): Record<TcpState, number> {
  return Object.fromEntries(TCP_STATES.map((s) => [s, 0])) as Record<TcpState, number>;
}

function byKey<T>(map: Map<string, T>, key: string, make: () => T): T {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    map.set(key, value);
  }
  return value;
}

/**
 * Classifies and counts the attributed sockets into one ContainerLinks per container of
 * `containers` (every container whose namespace was read, sockets or not), sorted by name.
 */
export function buildContainerLinks(
  sockets: readonly AttributedSocket[],
  containers: readonly Container[],
  peerContainers: readonly Container[],
  hostAddresses: Iterable<string>,
  options: LinkOptions,
): ContainerLinks[] {
  const classifier = new DirectionClassifier(sockets, options.ephemeralRange);
  const peers = new PeerResolver(sockets, peerContainers, hostAddresses);
  const links = new Map<string, { links: ContainerLinks; listening: Map<string, ListeningGroup>; established: Map<string, EstablishedGroup> }>();
  for (const container of containers) {
    links.set(container.id, {
      links: { container, listening: [], established: [], foldedGroups: 0, states: emptyStates() },
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
      const { direction, port } = classifier.classify(socket);
      const remoteContainer = peers.remoteContainer(socket, direction);
      byKey(entry.established, `${direction}|${socket.remoteAddress}|${port}|${remoteContainer}`, () => ({
        direction,
        remoteAddress: socket.remoteAddress,
        port,
        remoteContainer,
        count: 0,
      })).count++;
    }
  }

  const compare = (a: string | number, b: string | number) => (a < b ? -1 : a > b ? 1 : 0);
  return [...links.values()]
    .map(({ links: l, listening, established }) => {
      const budgeted = applySeriesBudget([...established.values()], options.maxSeriesPerContainer);
      return {
        ...l,
        listening: [...listening.values()].sort((a, b) => compare(a.address, b.address) || compare(a.port, b.port)),
        foldedGroups: budgeted.folded,
        established: budgeted.groups.sort(
        (a, b) =>
          compare(a.direction, b.direction) ||
          compare(a.remoteAddress, b.remoteAddress) ||
          compare(a.port, b.port) ||
          compare(a.remoteContainer, b.remoteContainer),
        ),
      };
    })
    .sort((a, b) => compare(a.container.name, b.container.name));
}
