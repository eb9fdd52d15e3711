import { describe, expect, it } from 'vitest';
import { ConnectionTally } from '../../../src/events/connectionTally.js';

/** Adds ends per namespace ({client: 1, server: 2}); what is fresh, the same way. */
const add = (tally: ConnectionTally, connection: string, o: Record<string, number>) => {
  const got = tally.add(connection, Object.keys(o), Object.values(o));
  return Object.fromEntries(Object.keys(o).map((namespace, i) => [namespace, got[i]]));
};
const fresh = (tally: ConnectionTally, o: Record<string, number>) => add(tally, 'a|b', o);
const collections = (tally: ConnectionTally, ...reads: Record<string, number>[]) =>
  reads.map((read) => {
    const got = fresh(tally, read);
    tally.endCollection();
    return got;
  });

describe('ConnectionTally', () => {
  it('counts both ends of a connection read together as one', () => {
    expect(collections(new ConnectionTally(), { client: 1, server: 1 })).toEqual([{ client: 1, server: 1 }]);
  });

  it('counts the second end, read a collection later, as no new connection', () => {
    expect(collections(new ConnectionTally(), { client: 1 }, { server: 1 })).toEqual([{ client: 1 }, { server: 0 }]);
  });

  it('counts a 4-tuple used again within one read as two connections', () => {
    expect(collections(new ConnectionTally(), { client: 2, server: 2 })).toEqual([{ client: 2, server: 2 }]);
  });

  // The storm of test/integration/events.test.ts once made one event too many in 18,947: a
  // 4-tuple used twice within a read, the second connection's server end in the next read.
  it('counts the late end of the second of two connections on one 4-tuple as no new connection', () => {
    expect(collections(new ConnectionTally(), { client: 2, server: 1 }, { server: 1 })).toEqual([{ client: 2, server: 1 }, { server: 0 }]);
  });

  it('counts a 4-tuple used again in a later read as a new connection', () => {
    expect(collections(new ConnectionTally(), { client: 1, server: 1 }, { client: 1, server: 1 })).toEqual([
      { client: 1, server: 1 },
      { client: 1, server: 1 },
    ]);
    // One end only (a peer off this host): each read's end is a connection of its own.
    expect(collections(new ConnectionTally(), { client: 1 }, { client: 1 }, { client: 1 })).toEqual([
      { client: 1 },
      { client: 1 },
      { client: 1 },
    ]);
  });

  it('counts a late end together with a new connection on the same 4-tuple once each', () => {
    expect(collections(new ConnectionTally(), { client: 1 }, { server: 2, client: 1 })).toEqual([{ client: 1 }, { server: 1, client: 1 }]);
  });

  it('forgets a connection three collections after its last end', () => {
    const tally = new ConnectionTally();
    collections(tally, { client: 1 });
    add(tally, 'c|d', { client: 1 });
    tally.endCollection();
    expect(tally.size).toBe(2);
    tally.endCollection();
    // a|b's last end was three collections ago; c|d's two.
    expect(tally.size).toBe(1);
    // Forgotten: its other end now is told as a connection of its own.
    expect(fresh(tally, { server: 1 })).toEqual({ server: 1 });
  });
});
