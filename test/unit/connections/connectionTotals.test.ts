import { describe, expect, it } from 'vitest';
import type { ContainerLinks } from '../../../src/links/containerLinks.js';
import type { EstablishedGroup } from '../../../src/links/linkGroups.js';
import { ConnectionTotals } from '../../../src/connections/connectionTotals.js';
import { client } from '../../support/connectionFixtures.js';

const MINUTE = 60_000;
const group = (remoteAddress: string, count: number, remoteContainer = ''): EstablishedGroup => ({
  direction: 'outbound',
  remoteAddress,
  port: 443,
  remoteContainer,
  count,
});
const links = (newConnections: EstablishedGroup[]): ContainerLinks[] => [
  {
    container: client,
    listening: [],
    established: [],
    foldedGroups: 0,
    states: {} as ContainerLinks['states'],
    newConnections,
  },
];
const totals = (t: ConnectionTotals) => [...t.series()].map((s) => `${s.group.remoteAddress} ${s.total}`).sort();

describe('ConnectionTotals', () => {
  it('adds up the new connections of every collection per link', () => {
    const t = new ConnectionTotals({ maxSeriesPerContainer: 10, retentionMs: 15 * MINUTE });
    t.add(links([group('203.0.113.1', 2)]), new Map(), 0);
    t.add(links([group('203.0.113.1', 3), group('203.0.113.2', 1)]), new Map([['host', 4]]), MINUTE);
    t.add(links([]), new Map([['host', 1]]), 2 * MINUTE);
    expect(totals(t)).toEqual(['203.0.113.1 5', '203.0.113.2 1']);
    expect([...t.unattributed()]).toEqual([['host', 5]]);
    expect([...t.series()][0]).toMatchObject({ container: client.name, image: client.image });
  });

  it('keeps the budget: series that exist stay, later groups fold into ~other', () => {
    const t = new ConnectionTotals({ maxSeriesPerContainer: 2, retentionMs: 15 * MINUTE });
    t.add(links([group('203.0.113.1', 1), group('203.0.113.2', 1)]), new Map(), 0);
    t.add(links([group('203.0.113.3', 1), group('203.0.113.4', 2), group('203.0.113.1', 1)]), new Map(), MINUTE);
    expect(totals(t)).toEqual(['203.0.113.1 2', '203.0.113.2 1', '~other 3']);
  });

  it('drops the series of a container that is gone', () => {
    const t = new ConnectionTotals({ maxSeriesPerContainer: 10, retentionMs: 15 * MINUTE });
    t.add(links([group('203.0.113.1', 1)]), new Map(), 0);
    t.retainContainers(new Set([client.name]));
    expect(totals(t)).toEqual(['203.0.113.1 1']);
    t.retainContainers(new Set(['another']));
    expect(totals(t)).toEqual([]);
  });

  it('drops a link with no new connection for the retention time, which frees its place in the budget', () => {
    const t = new ConnectionTotals({ maxSeriesPerContainer: 1, retentionMs: 15 * MINUTE });
    t.add(links([group('203.0.113.1', 1)]), new Map([['host', 1]]), 0);
    t.add(links([group('203.0.113.2', 1)]), new Map(), 10 * MINUTE);
    expect(totals(t)).toEqual(['203.0.113.1 1', '~other 1']);
    t.add(links([]), new Map(), 15 * MINUTE + 1);
    expect(totals(t)).toEqual(['~other 1']);
    expect([...t.unattributed()]).toEqual([]);
    t.add(links([group('203.0.113.3', 1)]), new Map(), 16 * MINUTE);
    expect(totals(t)).toEqual(['203.0.113.3 1', '~other 1']);
  });
});
