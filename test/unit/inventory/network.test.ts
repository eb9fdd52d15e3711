import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { networkFromListEntry, networksByIdAndName } from '../../../src/inventory/network.js';
import { NetworkList } from '../../../src/inventory/dockerAnswers.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

describe('networkFromListEntry (a real network list)', () => {
  const list = NetworkList.parse(JSON.parse(fixture('networks-list.json')));
  const byName = new Map(list.map((n) => [n.Name, networkFromListEntry(n)]));

  it('gives masqueraded and internal bridges host scope, routed bridges and macvlan/ipvlan global scope', () => {
    expect(Object.fromEntries([...byName].map(([name, n]) => [name, n.scope]))).toEqual({
      bridge: 'host',
      host: 'host',
      none: 'host',
      'outpost-fx-internal': 'host',
      'outpost-fx-routed': 'global',
      'outpost-fx-macvlan': 'global',
      'outpost-fx-ipvlan': 'global',
    });
  });

  it("keeps a bridge's subnets (where the host's address is the bridge's), not a macvlan's", () => {
    expect(byName.get('bridge')!.bridgeSubnets).toEqual(['172.17.0.0/16']);
    expect(byName.get('outpost-fx-internal')!.bridgeSubnets).toEqual(['10.213.74.0/24']);
    expect(byName.get('outpost-fx-macvlan')!.bridgeSubnets).toEqual([]);
    expect(byName.get('host')!.bridgeSubnets).toEqual([]);
  });
});

describe('networksByIdAndName', () => {
  it("finds Podman's networks by the name its endpoints give, Docker's by id", () => {
    const podman = NetworkList.parse(JSON.parse(fixture('podman-networks-list.json'))).map(networkFromListEntry);
    const index = networksByIdAndName(podman);
    const named = index.get('outpost-pm-net')!;
    expect(index.get(named.id)).toBe(named);
    expect(named.bridgeSubnets).toEqual(['10.213.85.0/24']);
  });
});
