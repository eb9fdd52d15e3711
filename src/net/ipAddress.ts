/* eslint-disable @typescript-eslint/no-non-null-assertion -- byte decoding on the per-socket hot path: every index is bounded by the record or line length checked before it, and a check per byte would be paid per socket */
import { BlockList, isIP } from 'node:net';

/**
 * Text forms of IP addresses held as bytes, as the kernel hands them out in /proc.
 * IPv6 follows RFC 5952 (lower case, longest zero run compressed), the form Docker's API uses,
 * so addresses from both sources compare as strings.
 */

export function formatIPv4(b0: number, b1: number, b2: number, b3: number): string {
  return `${b0}.${b1}.${b2}.${b3}`;
}

/**
 * Formats 16 bytes; an IPv4-mapped address (::ffff:a.b.c.d) comes out as plain IPv4. Hand-written
 * because it runs for every IPv6 end of every socket of every scrape: ipaddr.js gives the same
 * text at ×5.0 the cost (976 against 194 ns an address, npm run bench:hot-path, 2026-12-02).
 */
export function formatIPv6(bytes: ArrayLike<number>): string {
  let mapped = bytes[10] === 0xff && bytes[11] === 0xff;
  for (let i = 0; mapped && i < 10; i++) if (bytes[i] !== 0) mapped = false;
  if (mapped) return formatIPv4(bytes[12]!, bytes[13]!, bytes[14]!, bytes[15]!);

  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);

  // Longest run of at least two zero groups; the first one wins a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.map((g) => g.toString(16)).join(':');
  const head = groups
    .slice(0, bestStart)
    .map((g) => g.toString(16))
    .join(':');
  const tail = groups
    .slice(bestStart + bestLength)
    .map((g) => g.toString(16))
    .join(':');
  return `${head}::${tail}`;
}

export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1';
}

/** 169.254.0.0/16 and fe80::/10: valid on one link only. */
export function isLinkLocal(address: string): boolean {
  return address.startsWith('169.254.') || /^fe[89ab][0-9a-f]:/i.test(address);
}

export function isUnspecified(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

/** A CIDR or single address as written, checked; undefined when it is neither. */
export function parseCidr(text: string): { address: string; prefix: number; family: 4 | 6 } | undefined {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family !== 4 && family !== 6) return undefined;
  const max = family === 4 ? 32 : 128;
  if (slash < 0) return { address, prefix: max, family };
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) return undefined;
  return { address, prefix: Number(prefixText), family };
}

/** The addresses and CIDRs among `cidrs` (others are skipped), for inBlockList. */
export function addressBlockList(cidrs: Iterable<string>): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const parsed = parseCidr(cidr);
    if (parsed) list.addSubnet(parsed.address, parsed.prefix, parsed.family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

export function inBlockList(list: BlockList, address: string): boolean {
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6');
}
