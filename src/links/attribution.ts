import type { Container } from '../docker/container.js';
import { isSharedNamespace, type NetNamespace } from '../namespaces/netNamespaces.js';
import { isUnspecified } from '../sockets/ipAddress.js';
import type { NamespaceSockets } from '../sockets/socketSource.js';
import type { TcpSocket } from '../sockets/tcpSocket.js';

/** A socket with the container it belongs to. */
export interface AttributedSocket extends TcpSocket {
  /** Undefined for a socket of the host's own processes, or one that could not be attributed. */
  container: Container | undefined;
  namespace: NetNamespace;
  /**
   * True for a socket of a shared namespace that no process holds (TIME_WAIT, orphans) and whose
   * container cannot be told exactly: it is given to no one rather than to a guess.
   */
  unattributed: boolean;
}

/** Docker's embedded DNS server listens here inside every user-defined network; dockerd holds it. */
export const DOCKER_DNS_ADDRESS = '127.0.0.11';

/**
 * The container that held a socket of a shared namespace in an earlier collection (by its
 * connection's identity), for sockets no process holds any more. Undefined: not remembered.
 */
export type RememberedHolder = (namespaceId: string, socket: TcpSocket) => string | undefined;

/**
 * Gives every socket to a container:
 * - a namespace with one container: all of its sockets;
 * - a shared namespace: each socket to the container whose processes hold its inode. A socket
 *   no container process was seen holding goes to the container that held it while it was open
 *   (`remembered`), else, when it was accepted by a listener, to that listener's container; else
 *   one with an inode (held by a process of no container) to the namespace's owner, or in the
 *   host namespace to the host, and one without (TIME_WAIT, an orphan) to no one: unattributed.
 * Docker's DNS listener and its accepted connections are nobody's.
 */
export function attributeSockets(namespaces: readonly NamespaceSockets[], remembered?: RememberedHolder): AttributedSocket[] {
  const attributed: AttributedSocket[] = [];
  for (const { namespace, sockets, owners } of namespaces) {
    const byId = new Map(namespace.containers.map((c) => [c.id, c]));
    const fallback = namespace.host ? undefined : namespace.containers[0];
    const exact = owners !== undefined && isSharedNamespace(namespace);
    const holderOf = (socket: TcpSocket): Container | undefined => {
      if (!exact) return fallback;
      const ownerId = owners.get(socket.inode);
      return ownerId === undefined ? fallback : byId.get(ownerId);
    };
    const listeners = exact ? listenerHolders(sockets, holderOf) : undefined;
    for (const socket of sockets) {
      if (!namespace.host && socket.localAddress === DOCKER_DNS_ADDRESS) continue;
      const held = listeners && owners && socket.state !== 'listen' ? owners.get(socket.inode) : undefined;
      if (!listeners || socket.state === 'listen' || held !== undefined) {
        attributed.push({ ...socket, container: holderOf(socket), namespace, unattributed: false });
        continue;
      }
      // No holder seen: closed (no inode), or opened after the descriptors were read.
      const rememberedId = remembered?.(namespace.id, socket);
      const listener = listeners.get(`${socket.localAddress}|${socket.localPort}`) ?? listeners.get(`*|${socket.localPort}`);
      if (rememberedId !== undefined && byId.has(rememberedId)) {
        attributed.push({ ...socket, container: byId.get(rememberedId), namespace, unattributed: false });
      } else if (listener !== undefined && listener !== AMBIGUOUS) {
        attributed.push({ ...socket, container: listener.holder, namespace, unattributed: false });
      } else if (socket.inode !== 0) {
        attributed.push({ ...socket, container: fallback, namespace, unattributed: false });
      } else {
        attributed.push({ ...socket, container: undefined, namespace, unattributed: true });
      }
    }
  }
  return attributed;
}

const AMBIGUOUS = Symbol('several holders');

/**
 * "address|port" ("*" for a wildcard) → who holds the listener there; AMBIGUOUS when several
 * containers do (SO_REUSEPORT). `holder` undefined: a process of the host.
 */
function listenerHolders(
  sockets: readonly TcpSocket[],
  holderOf: (socket: TcpSocket) => Container | undefined,
): Map<string, { holder: Container | undefined } | typeof AMBIGUOUS> {
  const holders = new Map<string, { holder: Container | undefined } | typeof AMBIGUOUS>();
  for (const s of sockets) {
    if (s.state !== 'listen') continue;
    const key = `${isUnspecified(s.localAddress) ? '*' : s.localAddress}|${s.localPort}`;
    const holder = holderOf(s);
    const before = holders.get(key);
    holders.set(key, before === undefined || (before !== AMBIGUOUS && before.holder === holder) ? { holder } : AMBIGUOUS);
  }
  return holders;
}
