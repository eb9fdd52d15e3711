import type { Container } from '../inventory/container.js';
import type { NetNamespace } from '../namespaces/netNamespaces.js';
import { HOST_PEER } from '../links/peers.js';
import type { AttributedSocket } from '../attribution/attribution.js';
import { byKey } from '../base/byKey.js';
import type { DescribedEnd, LinkContext } from '../links/containerLinks.js';
import type { EstablishedGroup } from '../links/linkGroups.js';

/** The connections first seen in one collection, grouped as container_tcp_established is. */
export interface NewConnections {
  /** Per container id: its groups, each with the number of new connections. */
  byContainer: Map<string, EstablishedGroup[]>;
  /**
   * Per shared namespace (named by the container that owns it, or `host`): ends of new
   * connections that belong to one of its containers, but to which one cannot be told.
   */
  unattributed: Map<string, number>;
}

/** The label naming a shared namespace: its owner container, or host. */
function namespaceLabel(namespace: NetNamespace): string {
  return namespace.host ? HOST_PEER : (namespace.containers[0]?.name ?? '');
}

/**
 * Counts the ends of new connections (ConnectionLedger.observe) for their containers. When the
 * peer's end is not among the sockets (closed already, as one end of a short connection is) but
 * is exactly known to be a container's, that container is counted too, with the labels its own
 * socket would have had: every connection between two containers of the host counts at both ends.
 * Not for `countPeers: false`: connects that failed (the peer has no end), or a source that sees
 * every end as it happens (ebpf), whose peer's end is counted when it comes.
 */
export function countNewConnections(
  newEnds: readonly AttributedSocket[],
  context: LinkContext,
  options: { countPeers: boolean } = { countPeers: true },
): NewConnections {
  const groups = new Map<string, Map<string, EstablishedGroup>>();
  const unattributed = new Map<string, number>();
  const count = (container: Container, { group, key }: Pick<DescribedEnd, 'group' | 'key'>) => {
    const mine = byKey(groups, container.id, () => new Map<string, EstablishedGroup>());
    byKey(mine, key, () => ({ ...group, count: 0 })).count++;
  };
  const unknown = (namespace: NetNamespace) => {
    const label = namespaceLabel(namespace);
    unattributed.set(label, (unattributed.get(label) ?? 0) + 1);
  };

  for (const end of newEnds) {
    const described = context.describe(end);
    const { peer } = described;
    if (end.container) count(end.container, described);
    else if (end.unattributed) unknown(end.namespace);
    if (peer.visible || !options.countPeers) continue; // it is a new end of its own
    if (peer.end) count(peer.end.container, context.describe(mirrorEnd(end, peer.end.container, peer.end.namespace)));
    else if (peer.ambiguous) unknown(peer.ambiguous);
  }
  return {
    byContainer: new Map([...groups].map(([id, mine]) => [id, [...mine.values()]])),
    unattributed,
  };
}

/** The peer's end of a connection, as its socket was while it was there. */
function mirrorEnd(end: AttributedSocket, container: Container, namespace: NetNamespace): AttributedSocket {
  return {
    localAddress: end.remoteAddress,
    localPort: end.remotePort,
    remoteAddress: end.localAddress,
    remotePort: end.localPort,
    state: 'established',
    inode: 0,
    cookie: 0,
    container,
    namespace,
    unattributed: false,
  };
}

/** Each of `links`' containers with its groups of `counted` as its new connections: what ConnectionTotals.add takes. */
export function newConnectionsOf(
  links: readonly { container: Container }[],
  counted: NewConnections,
): { container: Container; newConnections: EstablishedGroup[] }[] {
  return links.map(({ container }) => ({ container, newConnections: counted.byContainer.get(container.id) ?? [] }));
}
