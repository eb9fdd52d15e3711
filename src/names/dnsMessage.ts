/* eslint-disable @typescript-eslint/no-non-null-assertion -- byte decoding: every index is checked against the message or packet length before it is read */
import { formatIPv4, formatIPv6 } from '../net/ipAddress.js';

/**
 * DNS answers as a container received them: which names resolve to which addresses, for how
 * long. Pure: bytes in, names out. Whatever the bytes, it never throws and never makes a name
 * the message did not hold; what it cannot read whole (a truncated record, a looping pointer)
 * it leaves out.
 */

/** An address a name resolved to, as one answer said. */
export interface ResolvedAddress {
  /** IPv4 dotted, IPv6 as RFC 5952 writes it: the text the sockets' addresses are in. */
  address: string;
  /** The names that led to it: the name asked first, then the CNAMEs followed, the record's owner last. */
  names: string[];
  /** Seconds the answer may be kept (RFC 2181: a TTL with the top bit set is 0), capped at a week. */
  ttlSeconds: number;
}

const MAX_TTL_SECONDS = 7 * 24 * 3600;
/** RFC 1035 §2.3.4: a name is at most 255 bytes on the wire. */
const MAX_NAME_BYTES = 255;
const TYPE_A = 1;
const TYPE_CNAME = 5;
const TYPE_AAAA = 28;
const CLASS_IN = 1;

/**
 * A name at `offset`, and where the bytes after it start; undefined when it is not one: beyond
 * the message, longer than 255 bytes, or a pointer that does not point back before itself
 * (which is what keeps a loop of pointers from being followed).
 */
export function readName(message: Uint8Array, offset: number): { name: string; next: number } | undefined {
  const labels: string[] = [];
  let at = offset;
  let next: number | undefined;
  let wireBytes = 1; // the root's zero
  // Every pointer must point before the one that came before it: at most message.length jumps.
  let limit = offset;
  for (;;) {
    if (at >= message.length) return undefined;
    const length = message[at]!;
    if (length === 0) {
      next ??= at + 1;
      break;
    }
    if ((length & 0xc0) === 0xc0) {
      if (at + 1 >= message.length) return undefined;
      const target = ((length & 0x3f) << 8) | message[at + 1]!;
      if (target >= limit) return undefined;
      next ??= at + 2;
      limit = target;
      at = target;
      continue;
    }
    if ((length & 0xc0) !== 0) return undefined; // 0x40, 0x80: extended labels, not in use
    wireBytes += length + 1;
    if (wireBytes > MAX_NAME_BYTES || at + 1 + length > message.length) return undefined;
    labels.push(labelText(message.subarray(at + 1, at + 1 + length)));
    at += 1 + length;
  }
  return { name: labels.length === 0 ? '.' : labels.join('.').toLowerCase(), next };
}

/**
 * A label as text, the way `dig` prints it: letters, digits, `-` and `_` as they are, every other
 * byte (a dot inside a label, a space, a control byte, anything not ASCII) as \DDD. So a hostile
 * name is plain text wherever it is shown, and two different names never print the same.
 */
function labelText(bytes: Uint8Array): string {
  let text = '';
  for (const b of bytes) {
    const plain = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x5f;
    text += plain ? String.fromCharCode(b) : `\\${String(b).padStart(3, '0')}`;
  }
  return text;
}

function formatAddress(bytes: Uint8Array): string {
  return bytes.length === 4 ? formatIPv4(bytes[0]!, bytes[1]!, bytes[2]!, bytes[3]!) : formatIPv6(bytes);
}

const u16 = (m: Uint8Array, at: number) => (m[at]! << 8) | m[at + 1]!;
const u32 = (m: Uint8Array, at: number) => ((m[at]! << 24) | (m[at + 1]! << 16) | (m[at + 2]! << 8) | m[at + 3]!) >>> 0;

/**
 * The addresses one DNS response message gives (A and AAAA of class IN, reached from the name
 * asked through its CNAMEs), with the names that led to each. Not a response, not NOERROR, or
 * nothing readable: none.
 */
export function parseDnsResponse(message: Uint8Array): ResolvedAddress[] {
  if (message.length < 12) return [];
  const flags = u16(message, 2);
  if ((flags & 0x8000) === 0 || (flags & 0x000f) !== 0) return []; // a query, or an error
  const questions = u16(message, 4);
  const answers = u16(message, 6);
  let at = 12;
  const asked: string[] = [];
  for (let i = 0; i < questions; i++) {
    const q = readName(message, at);
    if (!q || q.next + 4 > message.length) return [];
    asked.push(q.name);
    at = q.next + 4;
  }
  const cnames = new Map<string, string>(); // alias → the name it points to
  const records: { owner: string; address: string; ttl: number }[] = [];
  for (let i = 0; i < answers; i++) {
    const owner = readName(message, at);
    if (!owner || owner.next + 10 > message.length) break;
    const type = u16(message, owner.next);
    const klass = u16(message, owner.next + 2);
    const ttl = u32(message, owner.next + 4);
    const length = u16(message, owner.next + 8);
    const data = owner.next + 10;
    if (data + length > message.length) break;
    at = data + length;
    if (klass !== CLASS_IN) continue;
    if ((type === TYPE_A && length === 4) || (type === TYPE_AAAA && length === 16)) {
      records.push({ owner: owner.name, address: formatAddress(message.subarray(data, data + length)), ttl });
    } else if (type === TYPE_CNAME) {
      const target = readName(message, data);
      // A CNAME whose name runs beyond its record is not one.
      if (target && target.next <= data + length) cnames.set(owner.name, target.name);
    }
  }
  const resolved: ResolvedAddress[] = [];
  for (const question of asked) {
    // The chain from the name asked: each alias once (a CNAME loop ends where it repeats).
    const chain = [question];
    for (let name = cnames.get(question); name !== undefined && !chain.includes(name); name = cnames.get(name)) chain.push(name);
    for (const r of records) {
      const depth = chain.indexOf(r.owner);
      if (depth < 0) continue;
      const ttlSeconds = r.ttl >= 0x80000000 ? 0 : Math.min(r.ttl, MAX_TTL_SECONDS);
      resolved.push({ address: r.address, names: chain.slice(0, depth + 1), ttlSeconds });
    }
  }
  return resolved;
}

/** The DNS messages a packet carries (the IP packet as a packet socket gives it: UDP, or TCP's length-prefixed messages). */
export function dnsMessagesOfPacket(packet: Uint8Array): Uint8Array[] {
  if (packet.length < 1) return [];
  const version = packet[0]! >> 4;
  let protocol: number;
  let payload: number;
  let end: number;
  if (version === 4) {
    const headerLength = (packet[0]! & 0x0f) * 4;
    if (headerLength < 20 || packet.length < headerLength) return [];
    if ((u16(packet, 6) & 0x1fff) !== 0 || (u16(packet, 6) & 0x2000) !== 0) return []; // a fragment
    protocol = packet[9]!;
    payload = headerLength;
    end = Math.min(packet.length, u16(packet, 2));
  } else if (version === 6) {
    if (packet.length < 40) return [];
    protocol = packet[6]!;
    payload = 40;
    end = Math.min(packet.length, 40 + u16(packet, 4));
  } else return [];
  if (protocol === 17) {
    if (end < payload + 8) return [];
    return [packet.subarray(payload + 8, end)];
  }
  if (protocol === 6) {
    if (end < payload + 20) return [];
    const dataOffset = (packet[payload + 12]! >> 4) * 4;
    if (dataOffset < 20) return [];
    // Messages whole within this segment; one that runs on into the next is left out.
    const messages: Uint8Array[] = [];
    for (let at = payload + dataOffset; at + 2 <= end;) {
      const length = u16(packet, at);
      if (length === 0 || at + 2 + length > end) break;
      messages.push(packet.subarray(at + 2, at + 2 + length));
      at += 2 + length;
    }
    return messages;
  }
  return [];
}
