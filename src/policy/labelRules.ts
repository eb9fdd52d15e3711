import type { Container } from '../inventory/container.js';
import { PolicyLabelError } from '../base/errors.js';
import { parsePortSpan, type PolicyRule, type PortSpan } from './policyRules.js';
import { parseCidr } from '../net/ipAddress.js';
import { isDomainPattern, type Selector } from './selectors.js';

/** The labels by which a container declares its expected links, per direction. */
export const ALLOW_LABELS = { outbound: 'outpost.allow.outbound', inbound: 'outpost.allow.inbound' } as const;
export type PolicedDirection = keyof typeof ALLOW_LABELS;

/** Docker's container names; compose service names are the same or narrower. */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/**
 * One entry of an allow label, `PEER[:PORT]`: PEER is a container name or a compose service of
 * `project`, `host`, an IP or CIDR (IPv6 in brackets when a port follows), a DNS name the
 * container resolves (`api.example.com`, `*.example.com`), or `*`; PORT a port or a range. A
 * name with a dot may be a container's or a DNS name: it allows both. Returns the reason when it
 * does not parse.
 */
export function parseAllowEntry(entry: string, project: string): { peers: Selector[]; ports?: PortSpan[] } | string {
  let peerText = entry;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(entry);
  if (bracketed) {
    peerText = bracketed[1] ?? '';
    portText = bracketed[2];
    if (!parseCidr(peerText)) return `"${entry}": in brackets only an IPv6 address or CIDR`;
  } else if ((entry.match(/:/g) ?? []).length === 1) {
    peerText = entry.slice(0, entry.indexOf(':'));
    portText = entry.slice(entry.indexOf(':') + 1);
  }
  let ports: PortSpan[] | undefined;
  if (portText !== undefined) {
    const span = parsePortSpan(portText);
    if (typeof span === 'string') return `"${entry}": ${span}`;
    ports = [span];
  }
  let peers: Selector[];
  if (peerText === '*') peers = [{ any: true }];
  else if (peerText === 'host') peers = [{ host: true }];
  else if (parseCidr(peerText)) peers = [{ cidr: peerText }];
  else if (NAME.test(peerText)) {
    peers = [{ peer: { name: peerText, project } }];
    if (isDomainPattern(peerText)) peers.push({ domain: peerText.toLowerCase() });
  } else if (isDomainPattern(peerText)) peers = [{ domain: peerText.toLowerCase() }];
  else return `"${entry}": the peer is not a container or service name, host, an IP address, a CIDR, a DNS name or *`;
  return { peers, ...(ports ? { ports } : {}) };
}

/**
 * The rules a container's allow labels declare. A label covers its container in its direction
 * even when no entry parses (then nothing is allowed): a typo never silently allows.
 */
export function labelRules(container: Container): { rules: PolicyRule[]; errors: PolicyLabelError[] } {
  const rules: PolicyRule[] = [];
  const errors: PolicyLabelError[] = [];
  for (const direction of ['outbound', 'inbound'] as const) {
    const label = ALLOW_LABELS[direction];
    const value = container.labels[label];
    if (value === undefined) continue;
    const self: Selector = { id: container.id };
    const rule = (n: number, peer: Selector[], ports?: PortSpan[], text = value): PolicyRule => ({
      id: `label:${container.name}:${direction}:${n}`,
      source: 'label',
      origin: `container ${container.name}, label ${label}="${text}"`,
      from: direction === 'outbound' ? [self] : peer,
      to: direction === 'outbound' ? peer : [self],
      ...(ports ? { ports } : {}),
      covers: { from: direction === 'outbound', to: direction === 'inbound' },
    });
    const entries = value.split(',').map((e) => e.trim());
    let n = 0;
    for (const entry of entries) {
      if (entry === '') continue;
      const parsed = parseAllowEntry(entry, container.composeProject);
      if (typeof parsed === 'string') errors.push(new PolicyLabelError(container.name, label, parsed));
      else rules.push(rule(++n, parsed.peers, parsed.ports, entry));
    }
    if (n === 0) rules.push(rule(0, []));
  }
  return { rules, errors };
}
