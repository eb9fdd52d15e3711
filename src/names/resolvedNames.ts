import { byKey } from '../base/byKey.js';
import type { Container } from '../inventory/container.js';
import type { NetNamespace } from '../namespaces/netNamespaces.js';
import type { ContainerLinks } from '../links/containerLinks.js';
import type { ConnectionSeries } from '../connections/connectionTotals.js';
import { dnsMessagesOfPacket, parseDnsResponse } from './dnsMessage.js';
import type { DnsAnswerReader } from './dnsAnswerSockets.js';
import type { PeerNames } from './peerNames.js';

/** A name a container resolved to an address it is connected to: container_peer_name_info. */
export interface PeerName {
  container: Container;
  remoteAddress: string;
  name: string;
}

/** The names each container resolved to each address, as `(container name, address) → names` ([] for none). */
export function namesByLink(peerNames: readonly PeerName[]): (container: string, address: string) => string[] {
  const names = new Map<string, string[]>();
  for (const p of peerNames) byKey(names, `${p.container.name}|${p.remoteAddress}`, () => []).push(p.name);
  return (container, address) => names.get(`${container}|${address}`) ?? [];
}

/** What the names stage did since start (outpost_dns_*). */
export interface NameCounts {
  /** The answers are read: false once a lack of rights stopped it (logged once). */
  reading: boolean;
  /** DNS response messages read (each a whole message of a packet let through). */
  answers: number;
  /** Packets lost for want of room: in a socket's queue, or in the eBPF ring buffer or the queue behind it. */
  droppedPackets: number;
  /** Names not kept: the container's --dns.max-names-per-container were all in use. */
  droppedNames: number;
  /** Names kept now. */
  kept: number;
}

/**
 * The names stage: reads the DNS answers each container's namespace received since the last
 * collection, and names the addresses its containers are connected to by the names they resolved.
 */
export class ResolvedNames {
  readonly #reader: DnsAnswerReader;
  readonly #store: PeerNames;
  readonly #now: () => number;
  #answers = 0;

  constructor(options: { reader: DnsAnswerReader; store: PeerNames; now?: () => number }) {
    this.#reader = options.reader;
    this.#store = options.store;
    this.#now = options.now ?? Date.now;
  }

  /** How the answers are read: the ebpf source's program, or packet sockets. */
  get method(): DnsAnswerReader['method'] {
    return this.#reader.method;
  }

  /** Learns what each namespace's containers were answered since the last read. */
  read(namespaces: readonly NetNamespace[]): void {
    for (const { namespace, packets } of this.#reader.read(namespaces)) {
      for (const { receivedMs, packet } of packets) {
        for (const message of dnsMessagesOfPacket(packet)) {
          this.#answers++;
          const resolved = parseDnsResponse(message);
          if (resolved.length === 0) continue;
          // Which of a shared namespace's containers asked cannot be told: each may have.
          for (const container of namespace.containers) this.#store.learn(container.id, resolved, receivedMs);
        }
      }
    }
  }

  /**
   * The names of the addresses the links' containers have connections with: open now, new since
   * the last collection, or counted (`counted`, container_tcp_connections_total within its
   * retention), while the answer holds. An answer is kept past its TTL while a connection to its
   * address is open (or new); the others go once their TTL and grace are over.
   */
  connected(links: readonly ContainerLinks[], counted: Iterable<ConnectionSeries> = []): PeerName[] {
    const now = this.#now();
    const open = new Map<string, Set<string>>();
    const linked = new Map<string, Set<string>>();
    const byName = new Map<string, Container>();
    for (const { container, established, newConnections } of links) {
      byName.set(container.name, container);
      const addresses = new Set<string>();
      for (const g of established) addresses.add(g.remoteAddress);
      for (const g of newConnections) addresses.add(g.remoteAddress);
      open.set(container.id, addresses);
      linked.set(container.id, new Set(addresses));
    }
    for (const s of counted) {
      const container = byName.get(s.container);
      if (container) linked.get(container.id)?.add(s.group.remoteAddress);
    }
    this.#store.retain(open, now);
    const byId = new Map([...byName.values()].map((c) => [c.id, c]));
    return this.#store.rows(linked, now).flatMap(({ containerId, remoteAddress, name }) => {
      const container = byId.get(containerId);
      return container ? [{ container, remoteAddress, name }] : [];
    });
  }

  /** The names that resolved `address` for the container, now. */
  namesOf(containerId: string, address: string): string[] {
    return this.#store.namesOf(containerId, address, this.#now());
  }

  counts(): NameCounts {
    return {
      reading: this.#reader.off === undefined,
      answers: this.#answers,
      droppedPackets: this.#reader.dropped,
      droppedNames: this.#store.dropped,
      kept: this.#store.size,
    };
  }

  close(): void {
    this.#reader.close();
  }
}
