import type { Container } from '../docker/container.js';
import { TCP_STATES, type TcpState } from '../sockets/tcpSocket.js';
import type { AttributedSocket } from './attribution.js';
import { DirectionClassifier, type Direction } from './classification.js';
import { PeerResolver } from './peers.js';

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
  port: number;
  remoteContainer: string;
  count: number;
}

/** What one container listens on, whom it is connected to, and its sockets per state. */
export interface ContainerLinks {
  container: Container;
  listening: ListeningGroup[];
  established: EstablishedGroup[];
  states: Record<TcpState, number>;
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
): ContainerLinks[] {
  const classifier = new DirectionClassifier(sockets);
  const peers = new PeerResolver(sockets, peerContainers, hostAddresses);
  const links = new Map<string, { links: ContainerLinks; listening: Map<string, ListeningGroup>; established: Map<string, EstablishedGroup> }>();
  for (const container of containers) {
    links.set(container.id, {
      links: { container, listening: [], established: [], states: emptyStates() },
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
      const direction = classifier.direction(socket);
      const port = direction === 'inbound' ? socket.localPort : socket.remotePort;
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
    .map(({ links: l, listening, established }) => ({
      ...l,
      listening: [...listening.values()].sort((a, b) => compare(a.address, b.address) || compare(a.port, b.port)),
      established: [...established.values()].sort(
        (a, b) =>
          compare(a.direction, b.direction) ||
          compare(a.remoteAddress, b.remoteAddress) ||
          compare(a.port, b.port) ||
          compare(a.remoteContainer, b.remoteContainer),
      ),
    }))
    .sort((a, b) => compare(a.container.name, b.container.name));
}
