import type { Container } from '../inventory/container.js';
import { matchesEndpoint, policesContainer, type Endpoint, type Selector } from './selectors.js';

/** Ports from..to, both included. */
export interface PortSpan {
  from: number;
  to: number;
}

/** One expected link: clients `from` may connect to servers `to` on `ports`. Rules only allow. */
export interface PolicyRule {
  /** Stable within a policy: `file:<line>` or `label:<container>:<direction>:<n>`. */
  id: string;
  source: 'file' | 'label';
  /** Where it was written: `<file>:<line>`, or the container and its label. */
  origin: string;
  name?: string;
  from: Selector[];
  to: Selector[];
  /** Undefined: every port. */
  ports?: PortSpan[];
  /**
   * Which side the rule covers: the containers its `from` selects are judged outbound, those its
   * `to` selects inbound. A label covers only its own container; a file rule both sides, except
   * where a side names no container (an address, `host`).
   */
  covers: { from: boolean; to: boolean };
}

/** A connection between two ends, on a service port (`~ephemeral` when both ports were). */
export interface Link {
  client: Endpoint;
  server: Endpoint;
  port: number | string;
}

export type Verdict =
  /** No rule covers either end. */
  { kind: 'unpoliced' } | { kind: 'allowed'; rules: string[] } | { kind: 'unexpected'; side: 'client' | 'server'; container: string };

/** A portable port check: a link on `~ephemeral` matches only rules without ports. */
export function portAllowed(ports: readonly PortSpan[] | undefined, port: number | string): boolean {
  if (!ports) return true;
  return typeof port === 'number' && ports.some((p) => port >= p.from && port <= p.to);
}

function allowing(rules: readonly PolicyRule[], link: Link): PolicyRule[] {
  return rules.filter(
    (r) =>
      portAllowed(r.ports, link.port) &&
      r.from.some((s) => matchesEndpoint(s, link.client)) &&
      r.to.some((s) => matchesEndpoint(s, link.server)),
  );
}

/**
 * Judges links under one set of rules: each end that a rule covers (the client outbound, the
 * server inbound) expects a link only if one of the rules that cover that end allows it. No rule
 * covering either end: unpoliced. So a container's own rules decide for it: another container
 * cannot allow itself in. Which rules cover a container is found once per judge.
 */
export class PolicyJudge {
  readonly #rules: readonly PolicyRule[];
  readonly #covering = { from: new Map<string, PolicyRule[]>(), to: new Map<string, PolicyRule[]>() };

  constructor(rules: readonly PolicyRule[]) {
    this.#rules = rules;
  }

  judge(link: Link): Verdict {
    const out = this.rulesCovering('from', link.client.container);
    const into = this.rulesCovering('to', link.server.container);
    if (out.length === 0 && into.length === 0) return { kind: 'unpoliced' };
    const allowedBy: string[] = [];
    for (const [side, rulesOfSide, end] of [
      ['client', out, link.client],
      ['server', into, link.server],
    ] as const) {
      if (rulesOfSide.length === 0) continue;
      const allow = allowing(rulesOfSide, link);
      if (allow.length === 0) return { kind: 'unexpected', side, container: end.container?.name ?? '' };
      allowedBy.push(...allow.map((r) => r.id));
    }
    return { kind: 'allowed', rules: [...new Set(allowedBy)] };
  }

  /** The rules that cover `container` on `side` (from: its outbound links, to: its inbound ones). */
  rulesCovering(side: 'from' | 'to', container: Container | undefined): PolicyRule[] {
    if (!container) return [];
    let rules = this.#covering[side].get(container.id);
    if (!rules) {
      rules = this.#rules.filter((r) => r.covers[side] && r[side].some((s) => policesContainer(s, container)));
      this.#covering[side].set(container.id, rules);
    }
    return rules;
  }
}

/** One link judged under `rules` (see PolicyJudge). */
export function judgeLink(rules: readonly PolicyRule[], link: Link): Verdict {
  return new PolicyJudge(rules).judge(link);
}

/** `8080` or `8000-8099`; a reason when it is neither. */
export function parsePortSpan(text: string): PortSpan | string {
  const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  const from = Number(match?.[1]);
  const to = match?.[2] === undefined ? from : Number(match[2]);
  if (!match || from < 1 || to > 65535 || from > 65535) return `"${text}" is not a port from 1 to 65535 or a range such as 8000-8099`;
  if (from > to) return `"${text}" is a range that ends before it starts`;
  return { from, to };
}
