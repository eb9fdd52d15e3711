import { describe, expect, it } from 'vitest';
import type { Container } from '../../../src/inventory/container.js';
import type { EstablishedGroup } from '../../../src/links/linkGroups.js';
import type { ConnectionSeries } from '../../../src/connections/connectionTotals.js';
import { buildLinkGraph, type LinkGraphInput } from '../../../src/map/linkGraph.js';
import { api, containers, db, stray, web } from '../policy/policyFixtures.js';

const ip = (c: Container) => c.addresses[0]!.address;
const toPeer = (direction: 'inbound' | 'outbound', peer: Container | string, port: number, count = 1): EstablishedGroup => ({
  direction,
  remoteAddress: typeof peer === 'string' ? peer : ip(peer),
  port,
  remoteContainer: typeof peer === 'string' ? '' : peer.name,
  count,
});
const series = (container: Container, { count, ...group }: EstablishedGroup): ConnectionSeries => ({
  container: container.name,
  image: container.image,
  group,
  total: count,
});
const input = (over: Partial<LinkGraphInput>): LinkGraphInput => ({
  up: true,
  atMs: Date.parse('2026-11-25T08:00:00Z'),
  containers,
  links: containers.map((container) => ({ container, listening: [], established: [] })),
  counted: [],
  unexpectedOpen: [],
  unexpectedCounted: [],
  sentBytes: [],
  receivedBytes: [],
  retransmits: [],
  rtt: [],
  ...over,
});
const edgesOf = (g: ReturnType<typeof buildLinkGraph>) =>
  g.edges.map(
    (e) => `${e.source} → ${e.target}:${e.port} open ${e.open} counted ${e.counted} unexpected ${e.unexpectedOpen}/${e.unexpectedCounted}`,
  );

describe('buildLinkGraph', () => {
  it('draws a connection seen at both ends once, counted as the larger end, and groups containers by compose project or network', () => {
    const graph = buildLinkGraph(
      input({
        links: [
          { container: web, listening: [{ address: '0.0.0.0', port: 80, count: 1 }], established: [toPeer('outbound', api, 8080, 2)] },
          { container: api, listening: [{ address: '0.0.0.0', port: 8080, count: 1 }], established: [toPeer('inbound', web, 8080, 2)] },
          { container: db, listening: [], established: [] },
          { container: stray, listening: [], established: [] },
        ],
        // The client's end counted one more: it saw a connection that closed before the server's end was read.
        counted: [series(web, toPeer('outbound', api, 8080, 6)), series(api, toPeer('inbound', web, 8080, 5))],
      }),
    );
    expect(graph.nodes.map((n) => `${n.id} ${n.kind} [${n.group}]`)).toEqual([
      'container:shop-api container [project shop]',
      'container:shop-db container [project shop]',
      'container:shop-web container [project shop]',
      'container:stray container [network outpost-fixture-policy]',
    ]);
    expect(edgesOf(graph)).toEqual(['container:shop-web → container:shop-api:8080 open 2 counted 6 unexpected 0/0']);
    const apiNode = graph.nodes.find((n) => n.label === 'shop-api')!;
    expect(apiNode).toMatchObject({
      image: 'outpost-test/busybox:1',
      composeService: 'api',
      listening: [{ address: '0.0.0.0', port: 8080, count: 1 }],
    });
    expect(apiNode.addresses).toEqual([{ network: 'outpost-fixture-policy', address: '10.213.63.3' }]);
    expect(graph.collectedAt).toBe('2026-11-25T08:00:00.000Z');
  });

  it("carries each link's health: bytes each way (the larger end's), retransmits of both ends, the client's RTT", () => {
    const out = toPeer('outbound', api, 8080, 1);
    const back = toPeer('inbound', web, 8080, 1);
    const graph = buildLinkGraph(
      input({
        links: [
          { container: web, listening: [], established: [out] },
          { container: api, listening: [], established: [back] },
        ],
        counted: [series(web, out), series(api, back)],
        // The client sent 5,000 bytes and got 300 back; the server's view is a little behind.
        sentBytes: [series(web, { ...out, count: 5000 }), series(api, { ...back, count: 280 })],
        receivedBytes: [series(web, { ...out, count: 300 }), series(api, { ...back, count: 4990 })],
        retransmits: [series(web, { ...out, count: 2 }), series(api, { ...back, count: 1 })],
        rtt: [
          { container: api, group: back, seconds: 0.004 },
          { container: web, group: out, seconds: 0.003 },
        ],
      }),
    );
    expect(graph.edges).toHaveLength(1);
    expect(graph.edges[0]).toMatchObject({ bytesToServer: 5000, bytesToClient: 300, retransmits: 3, rttSeconds: 0.003 });
  });

  it('gives the host and each peer off the host a node of its own, with the client on the source side', () => {
    const graph = buildLinkGraph(
      input({
        links: [
          {
            container: web,
            listening: [],
            established: [toPeer('inbound', '192.0.2.7', 80, 3), { ...toPeer('outbound', '10.213.63.1', 9100), remoteContainer: 'host' }],
          },
        ],
      }),
    );
    expect(graph.nodes.filter((n) => n.kind !== 'container').map((n) => `${n.id} ${n.kind} ${n.label} [${n.group}]`)).toEqual([
      'host host host []',
      'peer:192.0.2.7 external 192.0.2.7 []',
    ]);
    expect(edgesOf(graph)).toEqual([
      'container:shop-web → host:9100 open 1 counted 0 unexpected 0/0',
      'peer:192.0.2.7 → container:shop-web:80 open 3 counted 0 unexpected 0/0',
    ]);
  });

  it('marks the unexpected part of an edge, once for both ends, and keeps a short connection that is closed now', () => {
    const short = toPeer('outbound', db, 5432);
    const graph = buildLinkGraph(
      input({
        counted: [series(stray, short), series(db, toPeer('inbound', stray, 5432))],
        unexpectedCounted: [series(stray, short), series(db, toPeer('inbound', stray, 5432))],
      }),
    );
    expect(edgesOf(graph)).toEqual(['container:stray → container:shop-db:5432 open 0 counted 1 unexpected 0/1']);
  });

  it('leaves out the links of a container that stopped since, at either end: the map shows what runs', () => {
    const gone = { ...stray, id: 'f'.repeat(64), name: 'stopped-client' };
    const graph = buildLinkGraph(
      input({ counted: [series(gone, toPeer('outbound', db, 5432, 4)), series(db, toPeer('inbound', gone, 5432, 4))] }),
    );
    expect(graph.nodes.map((n) => n.label)).toEqual(['shop-api', 'shop-db', 'shop-web', 'stray']);
    expect(graph.edges).toEqual([]);
  });

  it('says when the Docker API did not answer, with nothing to draw', () => {
    expect(buildLinkGraph(input({ up: false, containers: [], links: [] }))).toMatchObject({ up: false, nodes: [], edges: [] });
  });
});
