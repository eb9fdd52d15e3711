import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseFibTrieLocalAddresses, parseIfInet6Addresses } from '../../../src/sockets/hostAddresses.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

/** The addresses `ip -o addr` printed on the same machine at capture time. */
function ipAddrOracle(): string[] {
  return fixture('host.ip-addr')
    .split('\n')
    .map((line) => /\binet6? ([^/ ]+)\//.exec(line)?.[1])
    .filter((a): a is string => a !== undefined);
}

describe('host addresses from procfs', () => {
  it('equal what ip addr showed, for IPv4 and IPv6', () => {
    const fromProc = [
      ...parseFibTrieLocalAddresses(fixture('host.fib_trie')),
      ...parseIfInet6Addresses(fixture('host.if_inet6')),
    ].sort();
    expect(fromProc).toEqual([...new Set(ipAddrOracle())].sort());
  });

  it('lists each IPv4 address once though fib_trie names it in two tables', () => {
    const v4 = parseFibTrieLocalAddresses(fixture('host.fib_trie'));
    expect(v4).toContain('127.0.0.1');
    expect(v4).toContain('172.17.0.1');
    expect(new Set(v4).size).toBe(v4.length);
    // Network and broadcast leaves are not local addresses.
    expect(v4).not.toContain('172.17.255.255');
  });
});
