import type { Container } from '../inventory/container.js';
import { byKey } from '../base/byKey.js';
import type { LinkContext } from '../links/containerLinks.js';
import { groupKey, type EstablishedGroup } from '../links/linkGroups.js';
import { FOLDED_ADDRESS } from '../links/seriesBudget.js';
import type { EndFigures } from './connectionFigures.js';
import type { ConnectionTotals } from './connectionTotals.js';

/** What a link's connections did in one collection (FigureLedger increments, summed) and their RTT. */
export interface LinkFigureGroup {
  group: Omit<EstablishedGroup, 'count'>;
  /** groupKey(group), made once. */
  key: string;
  sentBytes: number;
  receivedBytes: number;
  retransmits: number;
  sentSegments: number;
  connectSeconds: number;
  /** The sum and number of the RTT samples of its ends open now or closed since the last collection. */
  rttSecondsSum: number;
  rttSamples: number;
}

/** The counters fed from LinkFigureGroup, each a family of container_tcp_*_total. */
export const LINK_COUNTERS = ['sentBytes', 'receivedBytes', 'retransmits', 'sentSegments', 'connectSeconds'] as const;
export type LinkCounter = (typeof LINK_COUNTERS)[number];

/** A link's figures before any end adds to them. */
export function noFigures(group: Omit<EstablishedGroup, 'count'>, key = groupKey(group)): LinkFigureGroup {
  return {
    group,
    key,
    sentBytes: 0,
    receivedBytes: 0,
    retransmits: 0,
    sentSegments: 0,
    connectSeconds: 0,
    rttSecondsSum: 0,
    rttSamples: 0,
  };
}

/** Per container id, its links' figures of one collection, grouped as container_tcp_established is. */
export function sumLinkFigures(ends: readonly EndFigures[], context: LinkContext): Map<string, LinkFigureGroup[]> {
  const byContainer = new Map<string, Map<string, LinkFigureGroup>>();
  for (const e of ends) {
    if (!e.end.container) continue; // unattributed: counted nowhere, as its connection
    const { group, key } = context.describe(e.end);
    const mine = byKey(byContainer, e.end.container.id, () => new Map<string, LinkFigureGroup>());
    const sum = byKey(mine, key, () => noFigures(group, key));
    sum.sentBytes += e.sentBytes;
    sum.receivedBytes += e.receivedBytes;
    sum.retransmits += e.retransmits;
    sum.sentSegments += e.sentSegments;
    sum.connectSeconds += e.connectSeconds;
    if (e.rttSeconds !== undefined) {
      sum.rttSecondsSum += e.rttSeconds;
      sum.rttSamples++;
    }
  }
  return new Map([...byContainer].map(([id, groups]) => [id, [...groups.values()]]));
}

/** container_tcp_rtt_seconds of one link. */
export interface LinkRtt {
  container: Container;
  group: Omit<EstablishedGroup, 'count'>;
  seconds: number;
}

/**
 * The mean RTT per link of one collection, under the labels the link's connections are counted
 * under (`connections`: its own, or ~other, where the samples of the folded links are averaged).
 */
export function linkRtt(
  containers: readonly { container: Container }[],
  figures: ReadonlyMap<string, LinkFigureGroup[]>,
  connections: Pick<ConnectionTotals, 'countedAs'>,
): LinkRtt[] {
  const out: LinkRtt[] = [];
  for (const { container } of containers) {
    const sums = new Map<string, { group: Omit<EstablishedGroup, 'count'>; sum: number; samples: number }>();
    for (const f of figures.get(container.id) ?? []) {
      if (f.rttSamples === 0) continue;
      const group = connections.countedAs(container, f.group, f.key) ?? { ...f.group, remoteAddress: FOLDED_ADDRESS };
      const sum = byKey(sums, groupKey(group), () => ({ group, sum: 0, samples: 0 }));
      sum.sum += f.rttSecondsSum;
      sum.samples += f.rttSamples;
    }
    for (const { group, sum, samples } of sums.values()) out.push({ container, group, seconds: sum / samples });
  }
  return out;
}
