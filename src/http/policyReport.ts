import type { Container } from '../inventory/container.js';
import type { ExpectedLinks } from '../policy/expectedLinks.js';
import { policesContainer, selectorText, selectsContainers, type Selector } from '../policy/selectors.js';

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * What /policy shows: every rule in force (file and labels) with where it came from, the
 * containers it covers, what it allowed in the last evaluation, and a warning when a side of it
 * selects containers but matches none running; the label errors; the last evaluation.
 */
export function policyReport(expected: ExpectedLinks, containers: readonly Container[]) {
  const last = expected.lastEvaluation;
  const covered = (selectors: readonly Selector[]) =>
    containers.filter((c) => selectors.some((s) => policesContainer(s, c))).map((c) => c.name);
  const rules = expected.rules(containers).map((r) => {
    const from = covered(r.from);
    const to = covered(r.to);
    const warnings: string[] = [];
    for (const [side, selectors, matched] of [
      ['from', r.from, from],
      ['to', r.to, to],
    ] as const) {
      if (selectors.length > 0 && selectors.every(selectsContainers) && matched.length === 0)
        warnings.push(`${side} matches no running container`);
    }
    return {
      id: r.id,
      source: r.source,
      origin: r.origin,
      ...(r.name ? { name: r.name } : {}),
      from: r.from.map(selectorText),
      to: r.to.map(selectorText),
      ports: r.ports?.map((p) => (p.from === p.to ? String(p.from) : `${p.from}-${p.to}`)) ?? 'any',
      // The containers whose connections this rule judges: outbound (from) and inbound (to).
      covers: { outbound: r.covers.from ? from : [], inbound: r.covers.to ? to : [] },
      allowed_links_last_evaluation: last?.allowedBy.get(r.id) ?? 0,
      // A rule with a DNS name: the addresses it allowed in the last evaluation, each with the names the container resolved it from.
      ...([...r.from, ...r.to].some((sel) => sel.domain !== undefined)
        ? {
            domain_matches: [...(last?.domainMatches.get(r.id) ?? new Map<string, readonly string[]>())].map(([address, names]) => ({
              address,
              names,
            })),
          }
        : {}),
      warnings,
    };
  });
  return {
    file: expected.file && {
      path: expected.file.path,
      last_reload_success: expected.file.lastReloadSuccess,
      loaded_at: iso(expected.file.loadedAtMs),
      ...(expected.file.lastError ? { last_error: expected.file.lastError } : {}),
    },
    rules,
    label_errors: expected.labelErrors(containers).map((e) => ({ container: e.container, label: e.label, error: e.message })),
    last_evaluation: last && {
      at: iso(last.atMs),
      link_groups_judged: last.judged,
      unexpected_link_groups: last.unexpectedGroups,
      unexpected: last.unexpected.flatMap(({ container, established, newConnections }) =>
        [...established.map((g) => ({ ...g, open: g.count })), ...newConnections.map((g) => ({ ...g, new_connections: g.count }))].map(
          ({ count: _count, ...g }) => ({ container: container.name, ...g }),
        ),
      ),
    },
  };
}
