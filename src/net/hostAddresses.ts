import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { addressBlockList, formatIPv6, inBlockList, isLinkLocal, isLoopback } from './ipAddress.js';

/**
 * The local addresses of a network namespace, read from procfs the way `ip addr` would show
 * them: IPv4 from the LOCAL routes of /proc/<pid>/net/fib_trie, IPv6 from if_inet6.
 * Used to know which remote addresses are the host itself.
 */

/** IPv4 addresses of `/32 host LOCAL` leaves in fib_trie (each appears under Main and Local). */
export function parseFibTrieLocalAddresses(text: string): string[] {
  const addresses = new Set<string>();
  let leaf = '';
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed.startsWith('|-- ')) leaf = trimmed.slice(4);
    else if (leaf && trimmed.startsWith('/32 host LOCAL')) addresses.add(leaf);
  }
  return [...addresses];
}

/** IPv6 addresses from if_inet6: 32 hex digits in network order, then index, prefix, scope, flags, name. */
export function parseIfInet6Addresses(text: string): string[] {
  const addresses = new Set<string>();
  for (const line of text.split('\n')) {
    const hex = line.slice(0, 32);
    if (!/^[0-9a-f]{32}$/i.test(hex)) continue;
    addresses.add(formatIPv6(Buffer.from(hex, 'hex')));
  }
  return [...addresses];
}

/** Reads the addresses of the namespace of `pid` under `procfsPath`. */
export async function readNamespaceAddresses(procfsPath: string, pid: number | 'self'): Promise<string[]> {
  const dir = join(procfsPath, String(pid), 'net');
  const [fibTrie, ifInet6] = await Promise.all([
    readFile(join(dir, 'fib_trie'), 'utf8'),
    // A kernel without IPv6 has no if_inet6.
    readFile(join(dir, 'if_inet6'), 'utf8').catch(() => ''),
  ]);
  return [...parseFibTrieLocalAddresses(fibTrie), ...parseIfInet6Addresses(ifInet6)];
}

/**
 * The host's addresses another host could connect to: without loopback, link-local addresses
 * and its addresses on Docker's bridges (the gateways of networks private to it), which every
 * host may have alike.
 */
export function externalHostAddresses(addresses: readonly string[], bridgeSubnets: Iterable<string>): string[] {
  const bridges = addressBlockList(bridgeSubnets);
  return addresses.filter((a) => !isLoopback(a) && !isLinkLocal(a) && !inBlockList(bridges, a));
}
