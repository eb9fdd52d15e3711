import { loadNativeAddon, nativePath } from '../base/nativeAddon.js';

/** The header of each packet record drain() returns (native/dns_answers.c): length, zero, time. */
export const DNS_PACKET_HEADER_SIZE = 16;

/** The native addon of native/dns_answers.c, built by node-gyp at install. */
export interface DnsAnswersAddon {
  /** A packet socket in the namespace of the ns/net file, filtered to DNS answers coming in; its fd. */
  open(netNamespacePath: string): number;
  /** What the socket has queued, at most `maxPackets`, without waiting; `dropped`: what its queue had no room for. */
  drain(fd: number, maxPackets: number): { packets: Buffer; dropped: number };
  close(fd: number): void;
  recordSize: number;
}

export const DEFAULT_DNS_ADDON_PATH = nativePath('build/Release/dns_answers.node');

export function loadDnsAnswersAddon(path: string = DEFAULT_DNS_ADDON_PATH): DnsAnswersAddon | Error {
  return loadNativeAddon<DnsAnswersAddon>(path, 'drain', DNS_PACKET_HEADER_SIZE);
}

/** A packet as the kernel received it: from its IP header on. */
export interface ReceivedPacket {
  receivedMs: number;
  packet: Uint8Array;
  /** The inode of the namespace that received it (the ebpf source's records); 0 from a packet socket, whose namespace is its own. */
  netns: number;
}

/**
 * The packets of one drain() buffer (or the ebpf source's drainDns(), the same layout); a record
 * that runs beyond the buffer ends it.
 */
export function receivedPackets(records: Buffer): ReceivedPacket[] {
  const packets: ReceivedPacket[] = [];
  for (let at = 0; at + DNS_PACKET_HEADER_SIZE <= records.length;) {
    const length = records.readUInt32LE(at);
    const start = at + DNS_PACKET_HEADER_SIZE;
    if (start + length > records.length) break;
    packets.push({
      receivedMs: records.readDoubleLE(at + 8),
      packet: records.subarray(start, start + length),
      netns: records.readUInt32LE(at + 4),
    });
    at = start + Math.ceil(length / 8) * 8;
  }
  return packets;
}
