import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { externalHostAddresses, parseFibTrieLocalAddresses, parseIfInet6Addresses } from '../../../src/net/hostAddresses.js';

const fixture = (name: string) => readFileSync(new URL(`../sockets/fixtures/${name}`, import.meta.url), 'utf8');

/** The addresses `ip -o addr` printed on the same machine at capture time, with their interface and scope. */
function ipAddrLines(): { device: string; address: string; scope: string }[] {
  return fixture('host.ip-addr')
    .split('\n')
    .map((line) => /^\d+: (\S+)\s+inet6? ([^/ ]+)\/\d+ .*scope (\w+)/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ device: m[1]!, address: m[2]!, scope: m[3]! }));
}
const ipAddrOracle = () => ipAddrLines().map((l) => l.address);

describe('host addresses from procfs', () => {
  it('equal what ip addr showed, for IPv4 and IPv6', () => {
    const fromProc = [...parseFibTrieLocalAddresses(fixture('host.fib_trie')), ...parseIfInet6Addresses(fixture('host.if_inet6'))].sort();
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

  it("keep for other hosts only the addresses off loopback, off link-local and off Docker's bridges", () => {
    const all = [...parseFibTrieLocalAddresses(fixture('host.fib_trie')), ...parseIfInet6Addresses(fixture('host.if_inet6'))];
    // The networks of that capture (the inspect fixtures' probe networks and the default bridge).
    const bridgeSubnets = ['172.17.0.0/16', '10.213.7.0/24', '10.213.8.0/24', 'fd00:213:7::/64'];
    const oracle = ipAddrLines()
      .filter((l) => l.scope === 'global' && !/^(docker0|br-)/.test(l.device))
      .map((l) => l.address);
    expect(externalHostAddresses(all, bridgeSubnets).sort()).toEqual(oracle.sort());
    expect(oracle).toEqual(['192.0.2.2', 'fd00::2']);
  });
});
