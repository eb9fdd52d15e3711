import type { DockerEvent, InspectAnswer } from './dockerAnswers.js';
import type { AddressScope, DockerNetwork } from './network.js';

/** What outpost knows of one running container; built from one inspect answer. */
export interface Container {
  id: string;
  /** Without Docker's leading slash. */
  name: string;
  /** The image as the container was created from it (tag, or id when untagged). */
  image: string;
  composeProject: string;
  composeService: string;
  /** The container's labels (compose's, the expected-links policy's `outpost.allow.*`, the user's). */
  labels: Readonly<Record<string, string>>;
  /** Docker's HostConfig.NetworkMode: default, bridge, host, none, container:<id>, or a network name (Podman's "bridge" on one named network is given that name, as Docker does). */
  networkMode: string;
  /** Host pid of the container's main process (as seen under --procfs.path). */
  pid: number;
  /** Every IP the container has, on every network. */
  addresses: ContainerAddress[];
  /** TCP ports published on the host. */
  publishedPorts: PublishedPort[];
}

export interface ContainerAddress {
  network: string;
  address: string;
  /** Whether another host can see this address as the container's (see AddressScope). */
  scope: AddressScope;
}

export interface PublishedPort {
  /** The host address the port is bound to; "0.0.0.0" or "::" for every address. */
  hostAddress: string;
  hostPort: number;
  containerPort: number;
}

const COMPOSE_PROJECT = 'com.docker.compose.project';
const COMPOSE_SERVICE = 'com.docker.compose.service';

/**
 * A running container from its inspect answer; undefined when it is not running. `networks` is
 * networksByIdAndName's index; an address on a network missing from it is taken as host-scoped:
 * never joined across hosts.
 */
export function containerFromInspect(info: InspectAnswer, networks: ReadonlyMap<string, DockerNetwork> = new Map()): Container | undefined {
  if (!info.State.Running || !info.State.Pid) return undefined;
  const labels = info.Config?.Labels ?? {};
  const addresses: ContainerAddress[] = [];
  for (const [network, endpoint] of Object.entries(info.NetworkSettings?.Networks ?? {})) {
    const scope = (networks.get(endpoint.NetworkID ?? '') ?? networks.get(network))?.scope ?? 'host';
    if (endpoint.IPAddress) addresses.push({ network, address: endpoint.IPAddress, scope });
    if (endpoint.GlobalIPv6Address) addresses.push({ network, address: endpoint.GlobalIPv6Address, scope });
  }
  const publishedPorts: PublishedPort[] = [];
  for (const [spec, bindings] of Object.entries(info.NetworkSettings?.Ports ?? {})) {
    const [port, protocol] = spec.split('/');
    if (protocol !== 'tcp' || !bindings) continue;
    for (const binding of bindings) {
      const hostPort = Number(binding.HostPort);
      if (!Number.isInteger(hostPort) || hostPort <= 0) continue;
      publishedPorts.push({
        hostAddress: binding.HostIp || '0.0.0.0',
        hostPort,
        containerPort: Number(port),
      });
    }
  }
  return {
    id: info.Id,
    name: info.Name.replace(/^\//, ''),
    image: info.Config?.Image || info.Image || '',
    composeProject: labels[COMPOSE_PROJECT] ?? '',
    composeService: labels[COMPOSE_SERVICE] ?? '',
    labels,
    networkMode: networkModeOf(info),
    pid: info.State.Pid,
    addresses,
    publishedPorts,
  };
}

/** Podman answers "bridge" for a container on a named network, where Docker answers the name. */
function networkModeOf(info: InspectAnswer): string {
  const mode = info.HostConfig?.NetworkMode ?? '';
  const names = Object.keys(info.NetworkSettings?.Networks ?? {});
  return mode === 'bridge' && names.length === 1 && names[0] !== undefined && names[0] !== 'bridge' ? names[0] : mode;
}

/** The container whose network namespace this one joins, for network_mode container:<id>. */
export function joinedContainerId(container: Container): string | undefined {
  return container.networkMode.startsWith('container:') ? container.networkMode.slice('container:'.length) : undefined;
}

/** What an event means for the inventory: forget a container, inspect it again, or list the networks again. */
export type InventoryChange = { kind: 'remove'; id: string } | { kind: 'refresh'; id: string } | { kind: 'networks' };

/**
 * The event actions inventoryChangeOf acts on; the event stream asks Docker for these only.
 * Podman filters by its own names, `died` for die and `remove` for destroy (it sends them as
 * die and remove); Docker ignores names it does not know.
 */
export const INVENTORY_ACTIONS = [
  'die',
  'died',
  'destroy',
  'remove',
  'start',
  'rename',
  'unpause',
  'connect',
  'disconnect',
  'create',
] as const;

export function inventoryChangeOf(event: DockerEvent): InventoryChange | undefined {
  const id = event.Actor?.ID;
  if (event.Type === 'container' && id) {
    switch (event.Action) {
      case 'die':
      case 'destroy':
      case 'remove':
        return { kind: 'remove', id };
      case 'start':
      case 'rename':
      case 'unpause':
        return { kind: 'refresh', id };
      default:
        return undefined;
    }
  }
  if (event.Type === 'network' && (event.Action === 'connect' || event.Action === 'disconnect')) {
    // Docker: Actor is the network, Attributes.container the container; Podman: Actor is the container.
    const container = event.Actor?.Attributes?.container ?? id;
    if (container) return { kind: 'refresh', id: container };
  }
  if (event.Type === 'network' && (event.Action === 'create' || event.Action === 'destroy')) return { kind: 'networks' };
  return undefined;
}
