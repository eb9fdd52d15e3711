import { Document, isCollection, isMap, isSeq } from 'yaml';
import type { Container } from '../inventory/container.js';
import type { EstablishedGroup } from '../links/linkGroups.js';
import { HOST_PEER } from '../links/peers.js';
import { FOLDED_ADDRESS } from '../links/seriesBudget.js';

/** A link seen from one of its ends: the container's name and the group's labels. */
export interface SeenLink {
  container: string;
  group: Omit<EstablishedGroup, 'count'>;
  /** The names the container resolved to the peer's address: a rule names the first rather than the address. */
  names?: readonly string[];
}

type WrittenSelector = string | Record<string, string>;

/** How a suggestion names a container: by compose service when it has one (it outlives the container), else by name. */
function containerSelector(name: string, byName: ReadonlyMap<string, Container>): WrittenSelector {
  const c = byName.get(name);
  return c?.composeProject && c.composeService ? { project: c.composeProject, service: c.composeService } : { container: name };
}

function peerSelector({ group, names }: SeenLink, byName: ReadonlyMap<string, Container>): WrittenSelector {
  if (group.remoteContainer === HOST_PEER) return 'host';
  if (group.remoteContainer) return containerSelector(group.remoteContainer, byName);
  const name = [...(names ?? [])].sort()[0];
  if (name !== undefined) return { domain: name };
  return group.remoteAddress === FOLDED_ADDRESS ? '*' : { cidr: group.remoteAddress };
}

const describe = (s: WrittenSelector) => (typeof s === 'string' ? s : Object.values(s).join('/'));

/** A link's rule as the file writes it: the selectors of its client and server, in its direction. */
function fileRule(link: SeenLink, byName: ReadonlyMap<string, Container>): { from: WrittenSelector; to: WrittenSelector } {
  const { container, group } = link;
  const self = containerSelector(container, byName);
  const peer = peerSelector(link, byName);
  return group.direction === 'outbound' ? { from: self, to: peer } : { from: peer, to: self };
}

/** One allow-label entry for a link seen from its container: PEER[:PORT], as labelRules reads it. */
function allowEntry({ container, group, names }: SeenLink, byName: ReadonlyMap<string, Container>): string {
  const self = byName.get(container);
  const peer = byName.get(group.remoteContainer);
  const resolved = [...(names ?? [])].sort()[0];
  let name: string;
  if (group.remoteContainer === HOST_PEER) name = 'host';
  else if (resolved !== undefined && !group.remoteContainer) name = resolved;
  else if (peer)
    name = self?.composeProject && peer.composeProject === self.composeProject && peer.composeService ? peer.composeService : peer.name;
  else if (group.remoteAddress === FOLDED_ADDRESS) name = '*';
  else name = group.remoteAddress.includes(':') ? `[${group.remoteAddress}]` : group.remoteAddress;
  return typeof group.port === 'number' ? `${name}:${group.port}` : name;
}

/**
 * The one rule line that would allow a link its container's rules refuse, in the grammar of the
 * rules that cover it: the container's allow label with an entry added (its entries kept), or a
 * rule of the policy file on one line.
 */
export function allowingRule(link: SeenLink, containers: readonly Container[], grammar: 'label' | 'file'): string {
  const byName = new Map(containers.map((c) => [c.name, c]));
  if (grammar === 'label') {
    const label = link.group.direction === 'outbound' ? 'outpost.allow.outbound' : 'outpost.allow.inbound';
    const before = byName.get(link.container)?.labels[label]?.trim();
    return `${label}=${before ? `${before},` : ''}${allowEntry(link, byName)}`;
  }
  const { from, to } = fileRule(link, byName);
  const doc = new Document();
  doc.contents = doc.createNode({ from, to, ...(typeof link.group.port === 'number' ? { ports: [link.group.port] } : {}) }, { flow: true });
  return `- ${doc.toString({ lineWidth: 0 }).trim()}`;
}

/**
 * A policy file, in the file's own grammar, that allows exactly the links seen: one rule per
 * client and server, with the service ports seen between them. Both ends of a link between two
 * containers give the same rule, once.
 */
export function suggestPolicy(seen: Iterable<SeenLink>, containers: readonly Container[], note: string): string {
  const byName = new Map(containers.map((c) => [c.name, c]));
  const rules = new Map<string, { from: WrittenSelector; to: WrittenSelector; ports: Set<number> | undefined }>();
  for (const link of seen) {
    const { group } = link;
    const { from, to } = fileRule(link, byName);
    const key = JSON.stringify([from, to]);
    const rule = rules.get(key) ?? { from, to, ports: new Set<number>() };
    rules.set(key, rule);
    // A link between two ephemeral ports has no service port to name: the rule allows every port.
    if (typeof group.port === 'number') rule.ports?.add(group.port);
    else rule.ports = undefined;
  }
  const written = [...rules.values()]
    .map(({ from, to, ports }) => ({
      name: `${describe(from)} → ${describe(to)}`,
      from,
      to,
      ...(ports && ports.size > 0 ? { ports: [...ports].sort((a, b) => a - b) } : {}),
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header = [
    `# An expected-links policy suggested by outpost: it allows exactly the links ${note}.`,
    '# Review it before you commit it: every link below runs today, expected or not.',
    '# Use it with --policy.file; see docs/policy.md for the grammar.',
  ].join('\n');
  // Selectors and ports on one line each, as a person writes them: {project: shop, service: web}.
  const doc = new Document({ rules: written });
  const list = doc.get('rules', true);
  for (const rule of isSeq(list) ? list.items : []) {
    for (const key of ['from', 'to', 'ports']) {
      const node = isMap(rule) ? rule.get(key, true) : undefined;
      if (isCollection(node)) node.flow = true;
    }
  }
  return `${header}\n${doc.toString({ lineWidth: 0 })}`;
}
