import type { NetNamespace } from '../namespaces/netNamespaces.js';
import { netNamespaceInode, type EbpfDnsPackets } from '../sockets/ebpfSource.js';
import type { DnsAnswerReader, NamespacePackets } from './dnsAnswerSockets.js';
import { receivedPackets, type ReceivedPacket } from './dnsAnswersAddon.js';

/**
 * The DNS answers read by the ebpf source's program dns_answers (native/bpf/outpost.bpf.c): every
 * namespace's, from the moment it loaded, with nothing more than the source's own CAP_BPF and
 * CAP_PERFMON. Each packet carries the inode of the namespace that received it; those of the
 * host's namespace and of namespaces no container is in are dropped here.
 */
export class EbpfDnsAnswers implements DnsAnswerReader {
  readonly method = 'ebpf' as const;
  readonly off = undefined;
  readonly #packets: EbpfDnsPackets;

  constructor(packets: EbpfDnsPackets) {
    this.#packets = packets;
  }

  get dropped(): number {
    return this.#packets.lost();
  }

  read(namespaces: readonly NetNamespace[]): NamespacePackets[] {
    const records = this.#packets.drain();
    if (records.length === 0) return [];
    const byInode = new Map<number, { namespace: NetNamespace; packets: ReceivedPacket[] }>();
    for (const namespace of namespaces) {
      if (!namespace.host) byInode.set(netNamespaceInode(namespace.id), { namespace, packets: [] });
    }
    for (const packet of receivedPackets(records)) byInode.get(packet.netns)?.packets.push(packet);
    return [...byInode.values()].filter((read) => read.packets.length > 0);
  }

  /** The source owns the program: it closes with it. */
  close(): void {}
}
