import { describe, expect, it } from 'vitest';
import { PeerNames } from '../../../src/names/peerNames.js';

const T0 = 1_700_000_000_000;
const answer = (address: string, name: string, ttlSeconds: number) => [{ address, names: [name], ttlSeconds }];
const connected = (o: Record<string, string[]>) => new Map(Object.entries(o).map(([id, addresses]) => [id, new Set(addresses)]));

describe('PeerNames', () => {
  it("names an address by the name asked for it, for the answer's TTL and the grace after it", () => {
    const names = new PeerNames({ maxNamesPerContainer: 10, graceMs: 5_000 });
    names.learn('api', [{ address: '192.0.2.1', names: ['alias.test', 'real.test'], ttlSeconds: 60 }], T0);
    expect(names.namesOf('api', '192.0.2.1', T0 + 60_000 + 5_000)).toEqual(['alias.test']);
    expect(names.namesOf('api', '192.0.2.1', T0 + 60_000 + 5_001)).toEqual([]);
    // Another container did not resolve it.
    expect(names.namesOf('web', '192.0.2.1', T0)).toEqual([]);
  });

  it('keeps a name past its TTL while the container is connected to the address, and forgets it after', () => {
    const names = new PeerNames({ maxNamesPerContainer: 10, graceMs: 0 });
    names.learn('api', answer('192.0.2.1', 'a.test', 1), T0);
    names.learn('api', answer('192.0.2.2', 'b.test', 1), T0);
    names.retain(connected({ api: ['192.0.2.1'] }), T0 + 10_000);
    expect(names.namesOf('api', '192.0.2.1', T0 + 10_000)).toEqual(['a.test']);
    expect(names.namesOf('api', '192.0.2.2', T0 + 10_000)).toEqual([]);
    expect(names.size).toBe(1);
    names.retain(connected({ api: [] }), T0 + 20_000);
    expect(names.size).toBe(0);
  });

  it('forgets the names of a container that is gone', () => {
    const names = new PeerNames({ maxNamesPerContainer: 10, graceMs: 0 });
    names.learn('api', answer('192.0.2.1', 'a.test', 600), T0);
    names.retain(connected({ web: [] }), T0);
    expect(names.size).toBe(0);
  });

  it('a later answer for the same name extends it; two names of one address are both kept', () => {
    const names = new PeerNames({ maxNamesPerContainer: 10, graceMs: 0 });
    names.learn('api', answer('192.0.2.1', 'a.test', 10), T0);
    names.learn('api', answer('192.0.2.1', 'a.test', 10), T0 + 8_000);
    names.learn('api', answer('192.0.2.1', 'cdn.test', 10), T0);
    expect(names.namesOf('api', '192.0.2.1', T0 + 15_000)).toEqual(['a.test']);
    expect(names.namesOf('api', '192.0.2.1', T0 + 5_000)).toEqual(['a.test', 'cdn.test']);
    expect(names.size).toBe(2);
  });

  it('holds at most maxNamesPerContainer: the first to expire makes room, one in use never does', () => {
    const names = new PeerNames({ maxNamesPerContainer: 2, graceMs: 0 });
    names.learn('api', answer('192.0.2.1', 'soon.test', 10), T0);
    names.learn('api', answer('192.0.2.2', 'later.test', 100), T0);
    names.learn('api', answer('192.0.2.3', 'new.test', 50), T0);
    expect(names.size).toBe(2);
    expect(names.namesOf('api', '192.0.2.1', T0)).toEqual([]);
    expect(names.namesOf('api', '192.0.2.3', T0)).toEqual(['new.test']);
    names.retain(connected({ api: ['192.0.2.2', '192.0.2.3'] }), T0);
    names.learn('api', answer('192.0.2.4', 'more.test', 50), T0);
    expect(names.namesOf('api', '192.0.2.4', T0)).toEqual([]);
    expect(names.dropped).toBe(1);
    expect(names.size).toBe(2);
    // Other containers have their own bound.
    names.learn('web', answer('192.0.2.4', 'more.test', 50), T0);
    expect(names.namesOf('web', '192.0.2.4', T0)).toEqual(['more.test']);
  });

  it('gives the rows of the addresses each container is connected to', () => {
    const names = new PeerNames({ maxNamesPerContainer: 10, graceMs: 0 });
    names.learn('api', answer('192.0.2.1', 'a.test', 60), T0);
    names.learn('api', answer('192.0.2.2', 'b.test', 60), T0);
    expect(names.rows(connected({ api: ['192.0.2.1', '198.51.100.1'], web: ['192.0.2.2'] }), T0)).toEqual([
      { containerId: 'api', remoteAddress: '192.0.2.1', name: 'a.test' },
    ]);
  });
});
