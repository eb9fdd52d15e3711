import { endpointKey, peerEndpointKey } from '../sockets/socketKeys.js';
import type { Container } from '../inventory/container.js';
import { isSharedNamespace, type NetNamespace } from '../namespaces/netNamespaces.js';
import { CONNECTION_STATES } from '../sockets/tcpSocket.js';
import { isLoopback, isUnspecified } from '../net/ipAddress.js';
import { DOCKER_DNS_ADDRESS, type AttributedSocket } from '../attribution/attribution.js';
import type { Direction } from './classification.js';

/** The value of remote_container for a peer that is a process of the host, not of a container. */
export const HOST_PEER = 'host';

/** The other end of a connection, as seen from one end. */
export interface Peer {
  /** remote_container: a container's name, `host`, or empty off the host. */
  name: string;
  /** The peer's socket is among those collected, as a connection end (it is counted on its own). */
  visible: boolean;
  /**
   * Where the peer's end is, when it is not visible but known exactly: a container on this host
   * (the holder of the listener it reached, or the only container of the address's namespace).
   */
  end?: { container: Container; namespace: NetNamespace };
  /** The peer is a container of this shared namespace, but which one cannot be told. */
  ambiguous?: NetNamespace;
}

/**
 * Names the container at the other end of a connection, in docs/architecture.md's order (links):
 * 1. the holder of the peer socket itself, found by the reversed 4-tuple among all sockets
 *    collected (exact for shared IPs and loopback); when that end is gone, the holder of the
 *    listener the connection reached (exact too);
 * 2. the container that has the remote address on one of its networks (loopback: the namespace's);
 * 3. for an address of the host: the container publishing that host port (outbound), else host;
 * 4. empty: the peer is off this host.
 */
export class PeerResolver {
  readonly #sockets = new Map<string, AttributedSocket>();
  readonly #addressOwners = new Map<string, Container>();
  readonly #hostAddresses: ReadonlySet<string>;
  readonly #publishers = new Map<number, { hostAddress: string; container: Container }[]>();
  readonly #namespaceOf = new Map<string, NetNamespace>();
  /** "namespace id|address|port" (address "*" for a wildcard) → the container holding the listener. */
  readonly #listeners = new Map<string, AttributedSocket>();
  /** "address|port" of every client end of a connection collected, loopback left out. */
  readonly #localEnds = new Set<string>();

  constructor(
    sockets: readonly AttributedSocket[],
    containers: readonly Container[],
    hostAddresses: Iterable<string>,
    namespaces: readonly NetNamespace[] = [],
  ) {
    const listeningPorts = new Set<string>();
    for (const s of sockets) {
      if (s.state !== 'listen') continue;
      listeningPorts.add(`${s.namespace.id}|${s.localPort}`);
      if (s.container) this.#listeners.set(`${s.namespace.id}|${isUnspecified(s.localAddress) ? '*' : s.localAddress}|${s.localPort}`, s);
    }
    for (const s of sockets) {
      if (s.state === 'listen') continue;
      const key = endpointKey(s.namespace.id, s);
      if (!this.#sockets.has(key)) this.#sockets.set(key, s);
      // A client's address and port are its connection's alone; a server's are every client's.
      if (!isLoopback(s.localAddress) && CONNECTION_STATES.has(s.state) && !listeningPorts.has(`${s.namespace.id}|${s.localPort}`)) {
        this.#localEnds.add(`${s.localAddress}|${s.localPort}`);
      }
    }
    for (const namespace of namespaces) for (const c of namespace.containers) this.#namespaceOf.set(c.id, namespace);
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

  peerOf(socket: AttributedSocket, direction: Direction): Peer {
    const peer = this.#sockets.get(peerEndpointKey(socket.namespace.id, socket));
    if (peer?.container) {
      // A peer end not yet accepted (a request socket, SYN_RECV) is no connection end of its own yet.
      return CONNECTION_STATES.has(peer.state)
        ? { name: peer.container.name, visible: true }
        : { name: peer.container.name, visible: false, end: { container: peer.container, namespace: peer.namespace } };
    }
    // The peer's end is collected: its own 4-tuple, or its address and port under another one
    // (a published port's NAT). It counts on its own.
    const visible = peer !== undefined || this.#localEnds.has(`${socket.remoteAddress}|${socket.remotePort}`);

    if (!peer && !visible) {
      const listener = this.#listenerReached(socket);
      if (listener?.container)
        return { name: listener.container.name, visible, end: { container: listener.container, namespace: listener.namespace } };
    }
    if (!peer || peer.unattributed) {
      const owner = this.#addressOwner(socket);
      if (owner) {
        const namespace = isLoopback(socket.remoteAddress) ? socket.namespace : this.#namespaceOf.get(owner.id);
        if (visible || !namespace) return { name: owner.name, visible };
        return isSharedNamespace(namespace)
          ? { name: owner.name, visible, ambiguous: namespace }
          : { name: owner.name, visible, end: { container: owner, namespace } };
      }
    }

    // A host-held peer socket on a published port is Docker's userland proxy for the publisher.
    const hostPeer = (peer !== undefined && !peer.unattributed) || this.#isHostAddress(socket);
    if (!hostPeer) return { name: '', visible };
    if (direction === 'outbound') {
      const publisher = this.#publisherOf(socket.remoteAddress, socket.remotePort);
      if (publisher) return { name: publisher.name, visible };
    }
    return { name: HOST_PEER, visible };
  }

  /** The container that has the remote address; for loopback, the namespace's (Docker's DNS server there is dockerd's). */
  #addressOwner(socket: AttributedSocket): Container | undefined {
    if (!isLoopback(socket.remoteAddress)) return this.#addressOwners.get(socket.remoteAddress);
    return socket.namespace.host || socket.remoteAddress === DOCKER_DNS_ADDRESS ? undefined : socket.namespace.containers[0];
  }

  /** The listener at the remote end of `socket`, in the namespace that has the remote address. */
  #listenerReached(socket: AttributedSocket): AttributedSocket | undefined {
    let namespaceId: string | undefined;
    if (isLoopback(socket.remoteAddress)) namespaceId = socket.namespace.id;
    else {
      const owner = this.#addressOwners.get(socket.remoteAddress);
      namespaceId = owner && this.#namespaceOf.get(owner.id)?.id;
    }
    if (namespaceId === undefined) return undefined;
    return (
      this.#listeners.get(`${namespaceId}|${socket.remoteAddress}|${socket.remotePort}`) ??
      this.#listeners.get(`${namespaceId}|*|${socket.remotePort}`)
    );
  }

  #isHostAddress(socket: AttributedSocket): boolean {
    // Loopback is the host only from inside the host's namespace.
    if (isLoopback(socket.remoteAddress)) return socket.namespace.host;
    return this.#hostAddresses.has(socket.remoteAddress);
  }

  #publisherOf(address: string, port: number): Container | undefined {
    const candidates = this.#publishers.get(port);
    if (!candidates) return undefined;
    const bound = (hostAddress: string) => isUnspecified(hostAddress) || hostAddress === address;
    return candidates.find((p) => bound(p.hostAddress))?.container;
  }
}
