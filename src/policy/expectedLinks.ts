import type { Container } from '../inventory/container.js';
import { errorMessage, type PolicyLabelError } from '../base/errors.js';
import type { ContainerLinks } from '../links/containerLinks.js';
import type { EstablishedGroup } from '../links/linkGroups.js';
import { HOST_PEER } from '../links/peers.js';
import { FOLDED_ADDRESS } from '../links/seriesBudget.js';
import type { Logger } from '../base/log.js';
import { byKey } from '../base/byKey.js';
import { labelRules } from './labelRules.js';
import { namedPeerAllowances, type NamedPeerAllowance } from './namedPeers.js';
import { loadPolicyFile } from './policyFile.js';
import { allowingRule } from './policySuggestion.js';
import { judgeLink, PolicyJudge, type Link, type PolicyRule, type Verdict } from './policyRules.js';

/** The connections of one container that the policy does not allow, grouped as its links are. */
export interface UnexpectedLinks {
  container: Container;
  /** Open now (container_tcp_unexpected_established). */
  established: EstablishedGroup[];
  /** First seen in this collection (container_tcp_unexpected_connections_total). */
  newConnections: EstablishedGroup[];
}

/** The state of --policy.file. */
export interface PolicyFileStatus {
  path: string;
  /** The last (re)load succeeded; when not, the rules loaded before stay. */
  lastReloadSuccess: boolean;
  /** When the rules in force were loaded (ms since the epoch). */
  loadedAtMs: number;
  lastError?: string;
}

/** One collection judged. */
export interface PolicyEvaluation {
  unexpected: UnexpectedLinks[];
  /** Rules in force, by source. */
  rules: { file: number; label: number };
  /** Per container name: entries of its allow labels that do not parse. */
  labelErrors: ReadonlyMap<string, number>;
  file?: PolicyFileStatus;
  atMs: number;
  /** Per rule id: link groups it allowed. */
  allowedBy: Map<string, number>;
  /** Link groups judged, and those unexpected. */
  judged: number;
  unexpectedGroups: number;
  /** Peers the rules allow by name, per container they cover (for peers named on other hosts). */
  namedPeers: readonly NamedPeerAllowance[];
  /**
   * Per rule id of a rule with a DNS name: the addresses it allowed, with the names they were
   * resolved from, as long as the container's answer holds (TTL and grace, or a connection open).
   */
  domainMatches: Map<string, Map<string, readonly string[]>>;
}

/** The names a container resolved to an address, while the answer holds (src/names/). */
export type NamesOf = (containerId: string, address: string) => readonly string[];

/**
 * What follows from the rules and the containers alone, not from the links: made again only
 * when the file's rules or a container (a new inspect, so its labels too) change, not at every
 * collection (namedPeerAllowances alone was 1.5 ms a scrape at N=100).
 */
interface PolicyStructure {
  fileRules: readonly PolicyRule[];
  containers: readonly Container[];
  rules: PolicyRule[];
  /** Which rules cover which container, found once per structure. */
  judge: PolicyJudge;
  namedPeers: readonly NamedPeerAllowance[];
  labelErrors: ReadonlyMap<string, number>;
}

/** Why a link of a container is unexpected, for an event: who refused it, under which rules, and what would allow it. */
export interface Explanation {
  verdict: Verdict;
  /** The rules that cover the end that refused the link, with where each was written (`policy.yaml:12`, a container's label). */
  rules: { id: string; origin: string }[];
  /** The one rule line that would allow it, in the grammar of those rules (allowingRule); only for an unexpected link. */
  allow?: string;
}

interface LabelEntry {
  /** The label values the rules were read from. */
  values: string;
  rules: PolicyRule[];
  errors: PolicyLabelError[];
}

/**
 * The expected-links policy: the rules of --policy.file (reloaded when it changes) and of every
 * container's allow labels, merged; judges each collection's links.
 */
export class ExpectedLinks {
  readonly #log: Logger;
  #fileRules: PolicyRule[];
  #file: PolicyFileStatus | undefined;
  readonly #labels = new Map<string, LabelEntry>();
  #last: PolicyEvaluation | undefined;
  #structure: PolicyStructure | undefined;
  #namesOf: NamesOf;
  /** Per rule id, per address it allowed by name: the container that resolved it. */
  readonly #domainAllowed = new Map<string, Map<string, string>>();

  constructor(options: { log: Logger; file?: { path: string; rules: PolicyRule[] }; namesOf?: NamesOf }) {
    this.#log = options.log;
    this.#namesOf = options.namesOf ?? (() => []);
    this.#fileRules = options.file?.rules ?? [];
    this.#file = options.file && { path: options.file.path, lastReloadSuccess: true, loadedAtMs: Date.now() };
  }

  /** Reads --policy.file again; a file that does not load is logged and the running rules stay. */
  async reloadFile(): Promise<void> {
    if (!this.#file) return;
    const { path } = this.#file;
    try {
      this.#fileRules = await loadPolicyFile(path);
      this.#file = { path, lastReloadSuccess: true, loadedAtMs: Date.now() };
      this.#log.info({ file: path, rules: this.#fileRules.length }, 'policy file reloaded');
    } catch (error) {
      this.#file = { ...this.#file, lastReloadSuccess: false, lastError: errorMessage(error) };
      this.#log.error({ file: path }, `policy file not reloaded, the running policy stays: ${errorMessage(error)}`);
    }
  }

  /** Every rule in force: the file's, then each container's labels'. */
  rules(containers: readonly Container[]): PolicyRule[] {
    return [...this.#fileRules, ...containers.flatMap((c) => this.#labelEntry(c).rules)];
  }

  /** The entries of the containers' allow labels that do not parse. */
  labelErrors(containers: readonly Container[]): PolicyLabelError[] {
    return containers.flatMap((c) => this.#labelEntry(c).errors);
  }

  get file(): PolicyFileStatus | undefined {
    return this.#file;
  }

  get lastEvaluation(): PolicyEvaluation | undefined {
    return this.#last;
  }

  /**
   * Judges every link of `links`; `containers` are the running containers, by which peers are
   * named (and whose labels are read).
   */
  evaluate(links: readonly ContainerLinks[], containers: readonly Container[]): PolicyEvaluation {
    const { rules, judge: policyJudge, namedPeers, labelErrors } = this.#structureOf(containers);
    const byName = new Map(containers.map((c) => [c.name, c]));
    const byId = new Map(rules.map((r) => [r.id, r]));
    const evaluation: PolicyEvaluation = {
      unexpected: [],
      rules: { file: this.#fileRules.length, label: rules.length - this.#fileRules.length },
      labelErrors,
      ...(this.#file ? { file: { ...this.#file } } : {}),
      atMs: Date.now(),
      allowedBy: new Map(),
      judged: 0,
      unexpectedGroups: 0,
      namedPeers,
      domainMatches: new Map(),
    };
    if (rules.length > 0) {
      const judge = (container: Container, groups: readonly EstablishedGroup[]) =>
        groups.filter((g) => {
          const link = linkOf(container, g, byName, this.#namesOf);
          const verdict = policyJudge.judge(link);
          evaluation.judged++;
          if (verdict.kind === 'allowed')
            for (const id of verdict.rules) {
              evaluation.allowedBy.set(id, (evaluation.allowedBy.get(id) ?? 0) + 1);
              const names = (g.direction === 'outbound' ? link.server : link.client).names;
              if (names && byId.get(id)?.[g.direction === 'outbound' ? 'to' : 'from'].some((sel) => sel.domain !== undefined))
                byKey(this.#domainAllowed, id, () => new Map()).set(g.remoteAddress, container.id);
            }
          if (verdict.kind === 'unexpected') evaluation.unexpectedGroups++;
          return verdict.kind === 'unexpected';
        });
      for (const { container, established, newConnections } of links) {
        const unexpected = { container, established: judge(container, established), newConnections: judge(container, newConnections) };
        if (unexpected.established.length > 0 || unexpected.newConnections.length > 0) evaluation.unexpected.push(unexpected);
      }
    }
    // What each rule by name allowed, while the name still resolves the address for its container.
    for (const [id, addresses] of this.#domainAllowed) {
      if (!byId.has(id)) this.#domainAllowed.delete(id);
      for (const [address, containerId] of addresses) {
        const names = this.#namesOf(containerId, address);
        if (names.length === 0) addresses.delete(address);
        else byKey(evaluation.domainMatches, id, () => new Map()).set(address, names);
      }
    }
    this.#last = evaluation;
    return evaluation;
  }

  /** The structure for these containers: the last one while neither they nor the file's rules changed. */
  #structureOf(containers: readonly Container[]): PolicyStructure {
    const last = this.#structure;
    if (last?.fileRules === this.#fileRules && sameItems(last.containers, containers)) return last;
    this.#forgetGone(containers);
    const rules = this.rules(containers);
    const judge = new PolicyJudge(rules);
    const labelErrors = new Map<string, number>();
    for (const c of containers) {
      const errors = this.#labelEntry(c).errors.length;
      if (errors > 0) labelErrors.set(c.name, errors);
    }
    this.#structure = {
      fileRules: this.#fileRules,
      containers: [...containers],
      rules,
      judge,
      namedPeers: rules.length > 0 ? namedPeerAllowances(judge, containers) : [],
      labelErrors,
    };
    return this.#structure;
  }

  /** The verdict on one link group of a container, explained (for events), under the rules in force for `containers`. */
  explain(container: Container, group: Omit<EstablishedGroup, 'count'>, containers: readonly Container[]): Explanation {
    const { judge } = this.#structureOf(containers);
    const link = linkOf(container, group, new Map(containers.map((c) => [c.name, c])), this.#namesOf);
    const verdict = judge.judge(link);
    if (verdict.kind !== 'unexpected') return { verdict, rules: [] };
    const end = verdict.side === 'client' ? link.client : link.server;
    const rules = judge.rulesCovering(verdict.side === 'client' ? 'from' : 'to', end.container);
    // The link as the end that refused it sees it: the container's own group, or its mirror at the peer.
    const peerNames = (group.direction === 'outbound' ? link.server : link.client).names;
    const seen =
      end.container === container
        ? { container: container.name, group, ...(peerNames ? { names: peerNames } : {}) }
        : {
            container: verdict.container,
            group: {
              direction: group.direction === 'outbound' ? ('inbound' as const) : ('outbound' as const),
              remoteAddress: container.addresses[0]?.address ?? '',
              port: group.port,
              remoteContainer: container.name,
            },
          };
    return {
      verdict,
      rules: rules.map((r) => ({ id: r.id, origin: r.origin })),
      allow: allowingRule(seen, containers, rules.some((r) => r.source === 'label') ? 'label' : 'file'),
    };
  }

  /** The verdict on one link group of a container (for /policy and tests). */
  judge(container: Container, group: Omit<EstablishedGroup, 'count'>, containers: readonly Container[]): Verdict {
    return judgeLink(this.rules(containers), linkOf(container, group, new Map(containers.map((c) => [c.name, c])), this.#namesOf));
  }

  /** A container's label rules, read once per set of label values; what does not parse is logged once. */
  #labelEntry(container: Container): LabelEntry {
    const values = `${container.labels['outpost.allow.outbound'] ?? '\u0000'}\u0000${container.labels['outpost.allow.inbound'] ?? '\u0000'}`;
    let entry = this.#labels.get(container.id);
    if (entry?.values !== values) {
      entry = { values, ...labelRules(container) };
      this.#labels.set(container.id, entry);
      for (const error of entry.errors) {
        this.#log.error(
          { container: container.name, label: error.label },
          `${error.message}; this entry allows nothing (counted in outpost_policy_label_errors)`,
        );
      }
    }
    return entry;
  }

  #forgetGone(containers: readonly Container[]): void {
    const ids = new Set(containers.map((c) => c.id));
    for (const id of this.#labels.keys()) if (!ids.has(id)) this.#labels.delete(id);
  }
}

/** The same objects in the same order (containers are replaced, never changed, when Docker says they did). */
function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}

/**
 * The link a group of a container stands for: the container at one end, its peer at the other,
 * with the names the container resolved to the peer's address.
 */
function linkOf(
  container: Container,
  group: Omit<EstablishedGroup, 'count'>,
  byName: ReadonlyMap<string, Container>,
  namesOf: NamesOf,
): Link {
  const self = { container, host: false };
  const peerContainer = byName.get(group.remoteContainer);
  const folded = group.remoteAddress === FOLDED_ADDRESS;
  const names = folded ? [] : namesOf(container.id, group.remoteAddress);
  const peer = {
    host: group.remoteContainer === HOST_PEER,
    ...(peerContainer ? { container: peerContainer } : {}),
    ...(!folded ? { address: group.remoteAddress } : {}),
    ...(names.length > 0 ? { names } : {}),
  };
  return group.direction === 'outbound'
    ? { client: self, server: peer, port: group.port }
    : { client: peer, server: self, port: group.port };
}
