import type { Container } from '../inventory/container.js';
import { isSharedNamespace, type NetNamespace } from '../namespaces/netNamespaces.js';
import { isUnspecified } from '../net/ipAddress.js';
import type { NamespaceSockets, SocketReadResult } from '../sockets/socketSource.js';
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
 * - a shared namespace: each socket to the container whose processes hold its inode (or, from
 *   the eBPF source, its cookie: who held or connected it). A socket
 *   no container process was seen holding goes to the container that held it while it was open
 *   (`remembered`), else, when it was accepted by a listener, to that listener's container; else
 *   one with an inode (held by a process of no container) to the namespace's owner, or in the
 *   host namespace to the host, and one without (TIME_WAIT, an orphan) to no one: unattributed.
 * Docker's DNS listener and its accepted connections are nobody's.
 */
export function attributeSockets(
  namespaces: readonly NamespaceSockets[],
  remembered?: RememberedHolder,
  /** Where the listeners are, when `namespaces` holds sockets read apart from them (ebpf's passed ones). */
  listing: readonly NamespaceSockets[] = namespaces,
): AttributedSocket[] {
  const attributed: AttributedSocket[] = [];
  const listingOf = new Map(listing.map((read) => [read.namespace.id, read]));
  for (const read of namespaces) {
    const { namespace, sockets, owners, ownersByCookie } = read;
    const fallback = namespace.host ? undefined : namespace.containers[0];
    const held = owners !== undefined && isSharedNamespace(namespace) ? owners : undefined;
    let holderOf = (_socket: TcpSocket): Holder => ({ container: fallback, unattributed: false });
    if (held) {
      const byId = new Map(namespace.containers.map((c) => [c.id, c]));
      const heldBy = (socket: TcpSocket) => held.get(socket.inode) ?? ownersByCookie?.get(socket.cookie);
      const byInode = containerHolding(read, byId, fallback);
      const listed = listingOf.get(namespace.id) ?? read;
      const listeners = listenerHolders(listed.sockets, listed === read ? byInode : containerHolding(listed, byId, fallback));
      holderOf = (socket) => {
        const id = heldBy(socket);
        if (socket.state === 'listen' || id !== undefined) return { container: byInode(socket), unattributed: false };
        // No holder seen: closed (no inode), or opened after the descriptors were read.
        const rememberedId = remembered?.(namespace.id, socket);
        if (rememberedId !== undefined && byId.has(rememberedId)) return { container: byId.get(rememberedId), unattributed: false };
        const listener = listeners.get(`${socket.localAddress}|${socket.localPort}`) ?? listeners.get(`*|${socket.localPort}`);
        if (listener !== undefined && listener !== AMBIGUOUS) return { container: listener.holder, unattributed: false };
        // An inode no container process holds is a process's outside every container.
        return socket.inode !== 0 ? { container: fallback, unattributed: false } : { container: undefined, unattributed: true };
      };
    }
    for (const socket of sockets) {
      if (!namespace.host && socket.localAddress === DOCKER_DNS_ADDRESS) continue;
      attributed.push({ ...socket, ...holderOf(socket), namespace });
    }
  }
  return attributed;
}

/** A read's sockets, and (sources with events) its passed ends and failed connects, attributed. */
export interface AttributedRead {
  sockets: AttributedSocket[];
  passed: AttributedSocket[];
  failedConnects: AttributedSocket[];
  closed: AttributedSocket[];
}

/**
 * attributeSockets for each part of a read. Passed and closed ends and failed connects were read apart from
 * the listing: the listeners that accepted them (or that they were aimed at) are the listing's.
 */
export function attributeRead(read: SocketReadResult, remembered?: RememberedHolder): AttributedRead {
  const attribute = (namespaces: readonly NamespaceSockets[] = []) => attributeSockets(namespaces, remembered, read.read);
  return {
    sockets: attribute(read.read),
    passed: attribute(read.passed),
    failedConnects: attribute(read.failedConnects),
    closed: attribute(read.closed),
  };
}

type Holder = Pick<AttributedSocket, 'container' | 'unattributed'>;

/** The container whose processes hold a socket of `read` (by inode, or by cookie), else `fallback`. */
function containerHolding(read: NamespaceSockets, byId: ReadonlyMap<string, Container>, fallback: Container | undefined) {
  return (socket: TcpSocket): Container | undefined => {
    const id = read.owners?.get(socket.inode) ?? read.ownersByCookie?.get(socket.cookie);
    return id === undefined ? fallback : byId.get(id);
  };
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
