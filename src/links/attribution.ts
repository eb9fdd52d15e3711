import type { Container } from '../docker/container.js';
import { isSharedNamespace, type NetNamespace } from '../namespaces/netNamespaces.js';
import type { NamespaceSockets } from '../sockets/socketSource.js';
import type { TcpSocket } from '../sockets/tcpSocket.js';

/** A socket with the container it belongs to. */
export interface AttributedSocket extends TcpSocket {
  /** Undefined for a socket of the host's own processes (host namespace, held by no container). */
  container: Container | undefined;
  namespace: NetNamespace;
}

/** Docker's embedded DNS server listens here inside every user-defined network; dockerd holds it. */
export const DOCKER_DNS_ADDRESS = '127.0.0.11';

/**
 * Gives every socket to a container:
 * - a namespace with one container: all of its sockets;
 * - a shared namespace: each socket to the container whose processes hold its inode; what no
 *   container process holds goes to the namespace's owner (TIME_WAIT sockets have no holder),
 *   or, in the host namespace, to the host.
 * Docker's DNS listener and its accepted connections are nobody's.
 */
export function attributeSockets(namespaces: readonly NamespaceSockets[]): AttributedSocket[] {
  const attributed: AttributedSocket[] = [];
  for (const { namespace, sockets, owners } of namespaces) {
    const byId = new Map(namespace.containers.map((c) => [c.id, c]));
    const fallback = namespace.host ? undefined : namespace.containers[0];
    for (const socket of sockets) {
      if (!namespace.host && socket.localAddress === DOCKER_DNS_ADDRESS) continue;
      let container = fallback;
      if (owners && isSharedNamespace(namespace)) {
        const ownerId = socket.inode === 0 ? undefined : owners.get(socket.inode);
        if (ownerId !== undefined) container = byId.get(ownerId);
      }
      attributed.push({ ...socket, container, namespace });
    }
  }
  return attributed;
}
