import type { Container } from '../inventory/container.js';
import type { ContainerLinks } from '../links/containerLinks.js';
import { groupKey, type EstablishedGroup } from '../links/linkGroups.js';
import { FOLDED_ADDRESS } from '../links/seriesBudget.js';

/** Between container name and image in a key: no name or image has it. */
export const SEPARATOR = '\u0000';

/** Series kept per `name SEPARATOR image`, then per group key: what ConnectionTotals and FigureTotals hold. */
type SeriesByContainer<T> = Map<string, Map<string, T>>;

/** Drops the series last increased before `oldest`, and the containers left with none. */
export function dropSeriesOlderThan<T>(byContainer: SeriesByContainer<T>, oldest: number, lastMs: (series: T) => number): void {
  for (const [key, series] of byContainer) {
    for (const [group, counted] of series) if (lastMs(counted) < oldest) series.delete(group);
    if (series.size === 0) byContainer.delete(key);
  }
}

/** Drops the series of the containers not named in `names`. */
export function retainContainerSeries<T>(byContainer: SeriesByContainer<T>, names: ReadonlySet<string>): void {
  for (const key of byContainer.keys()) if (!names.has(key.slice(0, key.indexOf(SEPARATOR)))) byContainer.delete(key);
}

/** One series of container_tcp_connections_total. */
export interface ConnectionSeries {
  container: string;
  image: string;
  group: Omit<EstablishedGroup, 'count'>;
  total: number;
}

interface Counted<T> {
  value: T;
  lastIncreaseMs: number;
}

export interface ConnectionTotalsOptions {
  /** Most series per container (--established.max-series-per-container); new groups beyond it fold. */
  maxSeriesPerContainer: number;
  /** A series with no new connection for this long is dropped (--connections.retention). */
  retentionMs: number;
  /**
   * Totals whose series this one follows: a new group takes the labels it was counted under there
   * (its own, or ~other), so that a link's figures and its connections are one series each.
   */
  labelsFrom?: ConnectionTotals;
}

/**
 * The counters of connections since outpost started, per link, from the new connections of each
 * collection. A counter series is never renamed: once a container has its budget of series, a
 * new group folds into remote_address="~other" (per direction, port and peer), as the gauge's do.
 * A link with no new connection for the retention time is dropped, which frees its place.
 */
export class ConnectionTotals {
  readonly #options: ConnectionTotalsOptions;
  /** container name SEPARATOR image → group key → series. */
  readonly #byContainer = new Map<string, Map<string, Counted<ConnectionSeries>>>();
  /** Shared namespace label → connections that could not be given to one of its containers. */
  readonly #unattributed = new Map<string, Counted<number>>();
  /** When series were last expired: at most once a second, a retention being minutes long. */
  #expiredAtMs = Number.NEGATIVE_INFINITY;

  constructor(options: ConnectionTotalsOptions) {
    this.#options = options;
  }

  add(
    links: readonly Pick<ContainerLinks, 'container' | 'newConnections'>[],
    unattributed: ReadonlyMap<string, number>,
    nowMs: number,
  ): void {
    for (const { container, newConnections } of links) {
      if (newConnections.length === 0) continue;
      const key = `${container.name}${SEPARATOR}${container.image}`;
      let series = this.#byContainer.get(key);
      if (!series) this.#byContainer.set(key, (series = new Map<string, Counted<ConnectionSeries>>()));
      for (const { count, ...group } of newConnections) {
        let counted = series.get(groupKey(group));
        if (!counted) {
          const labels =
            this.#options.labelsFrom?.countedAs(container, group) ??
            (this.#unfoldedCount(series) < this.#options.maxSeriesPerContainer ? group : { ...group, remoteAddress: FOLDED_ADDRESS });
          counted = series.get(groupKey(labels));
          if (!counted) {
            counted = { value: { container: container.name, image: container.image, group: labels, total: 0 }, lastIncreaseMs: nowMs };
            series.set(groupKey(labels), counted);
          }
        }
        counted.value.total += count;
        counted.lastIncreaseMs = nowMs;
      }
    }
    for (const [label, count] of unattributed) {
      const counted = this.#unattributed.get(label) ?? { value: 0, lastIncreaseMs: nowMs };
      counted.value += count;
      counted.lastIncreaseMs = nowMs;
      this.#unattributed.set(label, counted);
    }
    this.#expire(nowMs);
  }

  /** The labels `group` of `container` is counted under here (its own, or ~other); undefined when it is not. */
  countedAs(
    container: Pick<Container, 'name' | 'image'>,
    group: Omit<EstablishedGroup, 'count'>,
    key = groupKey(group),
  ): Omit<EstablishedGroup, 'count'> | undefined {
    const series = this.#byContainer.get(`${container.name}${SEPARATOR}${container.image}`);
    if (!series) return undefined;
    return (series.get(key) ?? series.get(groupKey({ ...group, remoteAddress: FOLDED_ADDRESS })))?.value.group;
  }

  /** Drops the series of containers that are gone: they make no connection any more. */
  retainContainers(names: ReadonlySet<string>): void {
    retainContainerSeries(this.#byContainer, names);
  }

  *series(): IterableIterator<ConnectionSeries> {
    for (const series of this.#byContainer.values()) for (const { value } of series.values()) yield value;
  }

  *unattributed(): IterableIterator<[string, number]> {
    for (const [label, { value }] of this.#unattributed) yield [label, value];
  }

  #unfoldedCount(series: Map<string, Counted<ConnectionSeries>>): number {
    let n = 0;
    for (const { value } of series.values()) if (value.group.remoteAddress !== FOLDED_ADDRESS) n++;
    return n;
  }

  #expire(nowMs: number): void {
    if (nowMs - this.#expiredAtMs < 1000) return;
    this.#expiredAtMs = nowMs;
    const oldest = nowMs - this.#options.retentionMs;
    dropSeriesOlderThan(this.#byContainer, oldest, (c) => c.lastIncreaseMs);
    for (const [label, counted] of this.#unattributed) if (counted.lastIncreaseMs < oldest) this.#unattributed.delete(label);
  }
}
