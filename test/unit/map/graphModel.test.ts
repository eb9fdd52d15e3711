import { describe, expect, it } from 'vitest';
import {
  edgeId,
  edgeRates,
  edgeEventsHref,
  formatByteRate,
  exceedsLimits,
  filterGraph,
  GRAPH_LIMITS,
  groupGraph,
  type GraphEdge,
  type GraphNode,
  type LinkGraph,
} from '../../../src/map/graphModel.js';

const node = (label: string, group: string, extra: Partial<GraphNode> = {}): GraphNode => ({
  id: `container:${label}`,
  kind: 'container',
  label,
  group,
  ...extra,
});
const edge = (source: string, target: string, port: number, open: number, counted = open, unexpectedCounted = 0): GraphEdge => ({
  id: edgeId(source, target, port),
  source,
  target,
  port,
  open,
  counted,
  unexpectedOpen: 0,
  unexpectedCounted,
  bytesToServer: 0,
  bytesToClient: 0,
  retransmits: 0,
});
const shop: LinkGraph = {
  up: true,
  collectedAt: '2026-11-25T08:00:00.000Z',
  nodes: [
    node('web', 'project shop', { image: 'nginx:1.27' }),
    node('api', 'project shop'),
    node('db', 'project shop', { addresses: [{ network: 'shop_default', address: '172.20.0.4' }] }),
    node('worker', 'project jobs'),
    node('probe', 'network bridge'),
    { id: 'host', kind: 'host', label: 'host', group: '' },
  ],
  edges: [
    edge('container:web', 'container:api', 8080, 2),
    edge('container:api', 'container:db', 5432, 1, 9),
    edge('container:worker', 'container:db', 5432, 3, 4, 4),
    edge('container:worker', 'container:api', 8080, 0, 2),
    edge('host', 'container:web', 80, 5),
  ],
};

describe('groupGraph', () => {
  it('draws one node per group, merges the links between two groups by port and sums their counts', () => {
    const grouped = groupGraph(shop);
    expect(grouped.nodes.map((n) => `${n.id} ${n.kind} ${n.members ?? ''}`)).toEqual([
      'group:project shop group 3',
      'group:project jobs group 1',
      'group:network bridge group 1',
      'host host ',
    ]);
    expect(grouped.edges.map((e) => `${e.id} ${e.open}/${e.counted}/${e.unexpectedCounted}`)).toEqual([
      'group:project shop→group:project shop:8080 2/2/0',
      'group:project shop→group:project shop:5432 1/9/0',
      'group:project jobs→group:project shop:5432 3/4/4',
      'group:project jobs→group:project shop:8080 0/2/0',
      'host→group:project shop:80 5/5/0',
    ]);
    // The input is not changed.
    expect(shop.edges[0]!.id).toBe('container:web→container:api:8080');
  });
});

describe('filterGraph', () => {
  it('keeps the nodes that match by name, group, image or address, the nodes linked to them and those links', () => {
    const ids = (g: LinkGraph) => [g.nodes.map((n) => n.label).join(' '), g.edges.map((e) => e.id).join(' ')];
    expect(ids(filterGraph(shop, 'WORKER'))).toEqual([
      'api db worker',
      'container:worker→container:db:5432 container:worker→container:api:8080',
    ]);
    expect(ids(filterGraph(shop, 'nginx'))[0]).toBe('web api host');
    expect(ids(filterGraph(shop, '172.20.0.4'))[0]).toBe('api db worker');
    expect(ids(filterGraph(shop, 'jobs'))[0]).toBe('api db worker');
    expect(filterGraph(shop, 'nothing-like-this').nodes).toEqual([]);
    expect(filterGraph(shop, '  ')).toBe(shop);
  });
});

describe('exceedsLimits', () => {
  it('holds 200 containers with 1,000 links, and not more nodes or links than the limits', () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => i);
    const nodes = many(200).map((i) => node(`c${i}`, `project p${i % 10}`));
    const edges = many(1000).map((i) => edge(`container:c${i % 200}`, `container:c${(i * 7 + 1) % 200}`, 8000 + Math.floor(i / 200), 1));
    expect(exceedsLimits({ nodes, edges })).toBe(false);
    expect(exceedsLimits({ nodes: [...nodes, ...many(GRAPH_LIMITS.nodes - 199).map((i) => node(`x${i}`, ''))], edges })).toBe(true);
    expect(
      exceedsLimits({
        nodes,
        edges: [...edges, ...many(GRAPH_LIMITS.edges - 999).map((i) => edge('host', `container:c${i % 200}`, 9000 + i, 1))],
      }),
    ).toBe(true);
  });
});

describe('edgeRates and formatByteRate', () => {
  const at = (iso: string, bytesToServer: number, bytesToClient: number): LinkGraph => ({
    up: true,
    collectedAt: iso,
    nodes: [],
    edges: [{ ...edge('container:a', 'container:b', 80, 1), bytesToServer, bytesToClient }],
  });
  it('gives bytes a second each way between two graphs, none for the first or after a restart', () => {
    const before = at('2026-11-25T08:00:00.000Z', 1_000, 500);
    const id = before.edges[0]!.id;
    expect(edgeRates(undefined, before).size).toBe(0);
    expect(edgeRates(before, at('2026-11-25T08:00:05.000Z', 11_000, 1_500)).get(id)).toBe(2_200);
    expect(edgeRates(before, at('2026-11-25T08:00:05.000Z', 10, 0)).has(id)).toBe(false);
    expect([formatByteRate(2_200), formatByteRate(999), formatByteRate(12_500_000)]).toEqual(['2.2 kB/s', '999 B/s', '13 MB/s']);
  });
});

describe('edgeEventsHref', () => {
  it('links an edge to the events of the link, whichever end tells them; none between two ends that are no container', () => {
    expect(edgeEventsHref({ source: 'container:stray', target: 'container:db', port: 5432 })).toBe('/events?between=stray%2Cdb&port=5432');
    expect(edgeEventsHref({ source: 'peer:10.0.0.9', target: 'container:db', port: 5432 })).toBe('/events?between=10.0.0.9%2Cdb&port=5432');
    expect(edgeEventsHref({ source: 'container:a', target: 'host', port: '~ephemeral' })).toBe(
      '/events?between=a%2Chost&port=%7Eephemeral',
    );
    expect(edgeEventsHref({ source: 'group:project shop', target: 'container:db', port: 5432 })).toBeUndefined();
    expect(edgeEventsHref({ source: 'host', target: 'peer:10.0.0.9', port: 22 })).toBeUndefined();
  });
});
