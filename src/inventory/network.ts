import type { NetworkListEntry } from './dockerAnswers.js';

/**
 * `host`: the address means something only on its own host — a bridge network whose traffic
 * leaves the host masqueraded (Docker's default), or an internal one; every host may have the
 * same 172.17.0.2. `global`: other hosts see and reach it as the container's own — overlay,
 * macvlan, ipvlan, plugin networks, a bridge without masquerading (routed). Only global
 * addresses may name a peer across hosts.
 */
export type AddressScope = 'host' | 'global';

/** What outpost needs of a Docker network: how far its addresses reach, and where the host is on it. */
export interface DockerNetwork {
  id: string;
  name: string;
  scope: AddressScope;
  /** A bridge's subnets: the host's own address in one is the bridge's, private to the host. */
  bridgeSubnets: string[];
}

const HOST_LOCAL_DRIVERS = new Set(['bridge', 'host', 'null', 'none']);

/** A network from the API's network list (Docker's, or Podman's compatible one). */
export function networkFromListEntry(info: NetworkListEntry): DockerNetwork {
  const options = info.Options ?? {};
  const routedBridge =
    options['com.docker.network.bridge.enable_ip_masquerade'] === 'false' ||
    ['routed', 'nat-unprotected'].includes(options['com.docker.network.bridge.gateway_mode_ipv4'] ?? '');
  const hostLocal = info.Internal || (HOST_LOCAL_DRIVERS.has(info.Driver ?? '') && !(info.Driver === 'bridge' && routedBridge));
  return {
    id: info.Id,
    name: info.Name,
    scope: hostLocal ? 'host' : 'global',
    // The list names a user-defined network's subnet, not always its gateway.
    bridgeSubnets: info.Driver === 'bridge' ? (info.IPAM?.Config ?? []).flatMap((c) => (c.Subnet ? [c.Subnet] : [])) : [],
  };
}

/**
 * The networks by id and by name: an endpoint names its network by id on Docker, by name on
 * Podman (whose list still gives ids).
 */
export function networksByIdAndName(networks: Iterable<DockerNetwork>): Map<string, DockerNetwork> {
  const index = new Map<string, DockerNetwork>();
  for (const n of networks) index.set(n.id, n).set(n.name, n);
  return index;
}
