import type { Container } from '../docker/container.js';
import { isLoopback, isUnspecified } from '../sockets/ipAddress.js';
import type { AttributedSocket } from './attribution.js';
import type { Direction } from './classification.js';

/** The value of remote_container for a peer that is a process of the host, not of a container. */
export const HOST_PEER = 'host';

function endpointKey(namespaceId: string, localAddress: string, localPort: number, remoteAddress: string, remotePort: number): string {
  // Loopback 4-tuples repeat across namespaces; only within one are they the same connection.
  const scope = isLoopback(localAddress) ? namespaceId : '';
  return `${scope}|${localAddress}|${localPort}|${remoteAddress}|${remotePort}`;
}

/**
 * Names the container at the other end of a connection, in DESIGN.md's order:
 * 1. the holder of the peer socket itself, found by the reversed 4-tuple among all sockets
 *    collected (exact for shared IPs and loopback);
 * 2. the container that has the remote address on one of its networks;
 * 3. for an address of the host: the container publishing that host port (outbound), else host;
 * 4. empty: the peer is off this host.
 */
export class PeerResolver {
  readonly #sockets = new Map<string, AttributedSocket>();
  readonly #addressOwners = new Map<string, Container>();
  readonly #hostAddresses: ReadonlySet<string>;
  readonly #publishers = new Map<number, { hostAddress: string; container: Container }[]>();

  constructor(sockets: readonly AttributedSocket[], containers: readonly Container[], hostAddresses: Iterable<string>) {
    for (const s of sockets) {
      if (s.state === 'listen') continue;
      const key = endpointKey(s.namespace.id, s.localAddress, s.localPort, s.remoteAddress, s.remotePort);
      if (!this.#sockets.has(key)) this.#sockets.set(key, s);
    }
    for (const container of containers) {
      for (const { address } of container.addresses) {
        if (!this.#addressOwners.has(address)) this.#addressOwners.set(address, container);
      }
      for (const published of container.publishedPorts) {
        const list = this.#publishers.get(published.hostPort) ?? [];
        list.push({ hostAddress: published.hostAddress, container });
        this.#publishers.set(published.hostPort, list);
      }
    }
    this.#hostAddresses = new Set(hostAddresses);
  }

  remoteContainer(socket: AttributedSocket, direction: Direction): string {
    const peer = this.#sockets.get(
      endpointKey(socket.namespace.id, socket.remoteAddress, socket.remotePort, socket.localAddress, socket.localPort),
    );
    if (peer?.container) return peer.container.name;

    // A host-held peer socket on a published port is Docker's userland proxy for the publisher.
    const hostAddress = peer !== undefined || this.#isHostAddress(socket);
    if (!peer) {
      const owner = this.#addressOwners.get(socket.remoteAddress);
      if (owner) return owner.name;
    }
    if (!hostAddress) return '';
    if (direction === 'outbound') {
      const publisher = this.#publisherOf(socket.remoteAddress, socket.remotePort);
      if (publisher) return publisher.name;
    }
    return HOST_PEER;
  }

  #isHostAddress(socket: AttributedSocket): boolean {
    // Loopback is the host only from inside the host's namespace.
    if (isLoopback(socket.remoteAddress)) return socket.namespace.host;
    return this.#hostAddresses.has(socket.remoteAddress);
  }

  #publisherOf(address: string, port: number): Container | undefined {
    const candidates = this.#publishers.get(port);
    if (!candidates) return undefined;
    const bound = (hostAddress: string) =>
      isUnspecified(hostAddress) || hostAddress === address;
    return candidates.find((p) => bound(p.hostAddress))?.container;
  }
}
