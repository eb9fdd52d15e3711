import type { Container } from '../inventory/container.js';
import { groupKey, type EstablishedGroup } from '../links/linkGroups.js';
import { FOLDED_ADDRESS } from '../links/seriesBudget.js';
import {
  dropSeriesOlderThan,
  retainContainerSeries,
  SEPARATOR,
  type ConnectionSeries,
  type ConnectionTotals,
  type ConnectionTotalsOptions,
} from './connectionTotals.js';
import { LINK_COUNTERS, type LinkCounter, type LinkFigureGroup } from './linkFigures.js';

/** One link's figures since outpost started: a series of each container_tcp_*_total of link health. */
export interface FigureSeries {
  container: string;
  image: string;
  group: Omit<EstablishedGroup, 'count'>;
  totals: Record<LinkCounter, number>;
  /** Whether a connect time was ever counted: only outbound links of a source that sees it have the series. */
  hasConnectTime: boolean;
}

/**
 * The link health counters (bytes, segments, retransmits, connect time) per link, from each
 * collection's LinkFigureGroup: all of a link's figures in one series record, added in one pass.
 * A link takes the labels its connections are counted under (`labelsFrom`: its own, or ~other),
 * else follows the same budget; a link with no figures for the retention time is dropped.
 */
export class FigureTotals {
  readonly #options: ConnectionTotalsOptions & { labelsFrom: ConnectionTotals };
  readonly #byContainer = new Map<string, Map<string, { value: FigureSeries; lastMs: number }>>();
  #expiredAtMs = Number.NEGATIVE_INFINITY;

  constructor(options: ConnectionTotalsOptions & { labelsFrom: ConnectionTotals }) {
    this.#options = options;
  }

  add(containers: readonly { container: Container }[], figures: ReadonlyMap<string, readonly LinkFigureGroup[]>, nowMs: number): void {
    for (const { container } of containers) {
      const groups = figures.get(container.id);
      if (!groups || groups.length === 0) continue;
      const key = `${container.name}${SEPARATOR}${container.image}`;
      let series = this.#byContainer.get(key);
      if (!series) this.#byContainer.set(key, (series = new Map<string, { value: FigureSeries; lastMs: number }>()));
      for (const f of groups) {
        let counted = series.get(f.key);
        if (!counted) {
          const labels = this.#options.labelsFrom.countedAs(container, f.group, f.key) ?? this.#budgeted(series, f.group);
          counted = series.get(groupKey(labels));
          if (!counted) {
            const totals = Object.fromEntries(LINK_COUNTERS.map((c) => [c, 0])) as Record<LinkCounter, number>;
            counted = {
              value: { container: container.name, image: container.image, group: labels, totals, hasConnectTime: false },
              lastMs: nowMs,
            };
            series.set(groupKey(labels), counted);
          }
        }
        const { totals } = counted.value;
        for (const c of LINK_COUNTERS) totals[c] += f[c];
        if (f.connectSeconds > 0) counted.value.hasConnectTime = true;
        counted.lastMs = nowMs;
      }
    }
    this.#expire(nowMs);
  }

  /** Every link's series record. */
  *entries(): IterableIterator<FigureSeries> {
    for (const series of this.#byContainer.values()) for (const { value } of series.values()) yield value;
  }

  /** One counter's series, as ConnectionTotals gives them. */
  *series(counter: LinkCounter): IterableIterator<ConnectionSeries> {
    for (const s of this.entries()) {
      if (counter === 'connectSeconds' && !s.hasConnectTime) continue;
      yield { container: s.container, image: s.image, group: s.group, total: s.totals[counter] };
    }
  }

  retainContainers(names: ReadonlySet<string>): void {
    retainContainerSeries(this.#byContainer, names);
  }

  #budgeted(series: Map<string, { value: FigureSeries }>, group: Omit<EstablishedGroup, 'count'>): Omit<EstablishedGroup, 'count'> {
    let unfolded = 0;
    for (const { value } of series.values()) if (value.group.remoteAddress !== FOLDED_ADDRESS) unfolded++;
    return unfolded < this.#options.maxSeriesPerContainer ? group : { ...group, remoteAddress: FOLDED_ADDRESS };
  }

  #expire(nowMs: number): void {
    if (nowMs - this.#expiredAtMs < 1000) return;
    this.#expiredAtMs = nowMs;
    dropSeriesOlderThan(this.#byContainer, nowMs - this.#options.retentionMs, (c) => c.lastMs);
  }
}
