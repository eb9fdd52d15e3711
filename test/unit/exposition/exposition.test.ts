import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Collection, CollectorCounters } from '../../../src/collection/collection.js';
import { ConnectionTotals, type ConnectionSeries } from '../../../src/connections/connectionTotals.js';
import { Exposition } from '../../../src/exposition/exposition.js';
import { VERSION } from '../../../src/base/version.js';
import { LINK_COUNTERS, noFigures, type LinkCounter, type LinkFigureGroup } from '../../../src/connections/linkFigures.js';
import { FigureTotals } from '../../../src/connections/figureTotals.js';
import { groupKey } from '../../../src/links/linkGroups.js';
import type { ConnectFailureReason } from '../../../src/sockets/tcpSocket.js';

// A collection captured from a real engine and kernel, and the exposition outpost rendered of it
// then (fixtures/captureCollection.mjs says what the two containers did): the golden exposition.
const fixture = (name: string) => readFileSync(new URL(`fixtures/${name}`, import.meta.url), 'utf8');
const withMaps = (_key: string, value: unknown) =>
  value !== null && typeof value === 'object' && '$map' in value ? new Map((value as { $map: [unknown, unknown][] }).$map) : value;
const captured = JSON.parse(fixture('collection.json'), withMaps) as {
  version: string;
  nodeVersion: string;
  collection: Collection;
  counters: {
    readErrors: Map<string, number>;
    parseErrors: number;
    connections: ConnectionSeries[];
    unattributed: [string, number][];
    unexpectedConnections: ConnectionSeries[];
    connectFailures: Record<ConnectFailureReason, ConnectionSeries[]>;
    figures: Record<LinkCounter, ConnectionSeries[]>;
  };
};
const golden = fixture('collection.prom');

/** Counters holding the captured series, built the way the Collector builds them: by adding connections. */
function totalsOf(series: readonly ConnectionSeries[], unattributed: [string, number][] = []): ConnectionTotals {
  const totals = new ConnectionTotals({ maxSeriesPerContainer: Number.MAX_SAFE_INTEGER, retentionMs: Number.MAX_SAFE_INTEGER });
  const containerNamed = (name: string) => captured.collection.containers.find((c) => c.name === name)!;
  const links = series.map(({ container, group, total }) => ({
    container: containerNamed(container),
    newConnections: [{ ...group, count: total }],
  }));
  totals.add(links, new Map(unattributed), Date.now());
  return totals;
}

/** The link health counters holding the captured series, built as the Collector builds them: from one collection's figures. */
function figureTotalsOf(byCounter: Record<LinkCounter, ConnectionSeries[]>): FigureTotals {
  const unlimited = { maxSeriesPerContainer: Number.MAX_SAFE_INTEGER, retentionMs: Number.MAX_SAFE_INTEGER };
  const totals = new FigureTotals({ ...unlimited, labelsFrom: new ConnectionTotals(unlimited) });
  const groups = new Map<string, LinkFigureGroup[]>();
  const containerNamed = (name: string) => captured.collection.containers.find((c) => c.name === name)!;
  for (const counter of LINK_COUNTERS) {
    for (const { container, group, total } of byCounter[counter]) {
      const mine = groups.get(containerNamed(container).id) ?? [];
      groups.set(containerNamed(container).id, mine);
      let f = mine.find((g) => g.key === groupKey(group));
      if (!f) {
        f = noFigures(group);
        mine.push(f);
      }
      f[counter] = total;
    }
  }
  totals.add(
    captured.collection.containers.map((container) => ({ container })),
    groups,
    Date.now(),
  );
  return totals;
}

function countersOf(): CollectorCounters {
  const { readErrors, parseErrors, connections, unattributed, unexpectedConnections, connectFailures, figures } = captured.counters;
  const perKey = <K extends string>(byKey: Record<K, ConnectionSeries[]>) =>
    Object.fromEntries(Object.entries<ConnectionSeries[]>(byKey).map(([key, series]) => [key, totalsOf(series)])) as Record<
      K,
      ConnectionTotals
    >;
  return {
    readErrors,
    parseErrors,
    connections: totalsOf(connections, unattributed),
    unexpectedConnections: totalsOf(unexpectedConnections),
    connectFailures: perKey(connectFailures),
    figures: figureTotalsOf(figures),
  };
}

/** The build's own versions, as at the capture. */
const asCaptured = (text: string) =>
  text.replace(
    `version="${VERSION}",node_version="${process.version}"`,
    `version="${captured.version}",node_version="${captured.nodeVersion}"`,
  );

describe('Exposition of a captured collection', () => {
  it('is byte for byte the golden exposition', async () => {
    const page = await new Exposition({ processMetrics: false }).render(captured.collection, countersOf());
    expect(asCaptured(page.toString())).toBe(golden);
  });

  it('is the same when rendered again from the same registry', async () => {
    const exposition = new Exposition({ processMetrics: false });
    await exposition.render(captured.collection, countersOf());
    expect(asCaptured((await exposition.render(captured.collection, countersOf())).toString())).toBe(golden);
  });

  it('holds every family of the contract the capture exercised', () => {
    // What the scenario did, as the golden file must say it (a capture that missed some would pass the tests above).
    for (const line of [
      /^container_tcp_listening\{container="outpost-capture-exposition-server",[^}]*port="8080"\} 1$/m,
      /^container_tcp_established\{container="outpost-capture-exposition-client",[^}]*direction="outbound",[^}]*port="8080",remote_container="outpost-capture-exposition-server"\} 1$/m,
      /^container_tcp_connections_total\{container="outpost-capture-exposition-client",[^}]*port="9000",[^}]*\} 3$/m,
      /^container_tcp_unexpected_connections_total\{container="outpost-capture-exposition-client",[^}]*port="9000",[^}]*\} 3$/m,
      /^container_tcp_connect_failures_total\{container="outpost-capture-exposition-client",[^}]*port="9999",[^}]*,reason="refused"\} 1$/m,
      /^container_tcp_sent_bytes_total\{container="outpost-capture-exposition-client",[^}]*port="9000",[^}]*\} \d{3,}$/m,
      /^container_tcp_received_bytes_total\{container="outpost-capture-exposition-server",[^}]*port="9000",[^}]*\} \d{3,}$/m,
      /^container_tcp_retransmits_total\{container="outpost-capture-exposition-client",[^}]*port="8080",[^}]*\} 0$/m,
      /^container_tcp_sent_segments_total\{container="outpost-capture-exposition-client",[^}]*port="8080",[^}]*\} \d{2,}$/m,
      /^container_tcp_connect_seconds_total\{container="outpost-capture-exposition-client",[^}]*port="9000",[^}]*\} 0\.\d+(e-\d+)?$/m,
      /^container_tcp_rtt_seconds\{container="outpost-capture-exposition-client",[^}]*port="8080",[^}]*\} 0\.\d+(e-\d+)?$/m,
      /^container_peer_name_info\{container="outpost-capture-exposition-client",remote_address="10\.213\.43\.\d+",name="outpost-capture-exposition-server"\} 1$/m,
      /^outpost_dns_reading 1$/m,
      /^outpost_dns_answers_read_total [1-9]\d*$/m,
      /^outpost_policy_rules\{source="file"\} 1$/m,
      /^outpost_up 1$/m,
    ]) {
      expect(golden).toMatch(line);
    }
  });
});
