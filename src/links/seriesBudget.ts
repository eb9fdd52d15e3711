import type { EstablishedGroup } from './linkGroups.js';

/** The remote_address of the series that groups over the budget fold into. */
export const FOLDED_ADDRESS = '~other';

export interface BudgetedGroups {
  groups: EstablishedGroup[];
  /** How many groups were folded into ~other series. */
  folded: number;
}

/**
 * Keeps at most `budget` established groups of one container: named peers first, then the
 * largest, then by address (so the choice is stable between scrapes). The rest fold into one
 * series per (direction, port, remote_container) with remote_address="~other": the remote
 * addresses — what grows without bound — go; the service ports and peer containers stay.
 */
export function applySeriesBudget(groups: readonly EstablishedGroup[], budget: number): BudgetedGroups {
  if (groups.length <= budget) return { groups: [...groups], folded: 0 };
  const ranked = [...groups].sort(
    (a, b) =>
      Number(b.remoteContainer !== '') - Number(a.remoteContainer !== '') ||
      b.count - a.count ||
      (a.remoteAddress < b.remoteAddress ? -1 : a.remoteAddress > b.remoteAddress ? 1 : 0),
  );
  const kept = ranked.slice(0, budget);
  const folds = new Map<string, EstablishedGroup>();
  for (const g of ranked.slice(budget)) {
    const key = `${g.direction}|${g.port}|${g.remoteContainer}`;
    const fold = folds.get(key);
    if (fold) fold.count += g.count;
    else folds.set(key, { ...g, remoteAddress: FOLDED_ADDRESS });
  }
  return { groups: [...kept, ...folds.values()], folded: ranked.length - budget };
}
