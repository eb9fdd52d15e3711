import type { Container } from '../inventory/container.js';
import type { PolicyJudge, PortSpan } from './policyRules.js';
import type { Selector } from './selectors.js';

/**
 * A rule's allowance, for one container it covers, of a peer by name: a container `peer`, or a
 * compose service `peer` of `project`. Exported (outpost_policy_peer_allowed_info) so that
 * Prometheus can allow a link whose peer it names on another host, where this outpost sees only
 * an address.
 */
export interface NamedPeerAllowance {
  container: string;
  direction: 'outbound' | 'inbound';
  peer: string;
  /** The project in which `peer` may also be a compose service; empty: a container name only. */
  project: string;
  /** A port, or `*` for every port. */
  port: string;
}

/** Rules with wider port ranges than this are not exported port by port (docs/many-hosts.md). */
export const MAX_EXPORTED_PORTS = 64;

/** The name a selector gives its peer, when it names one exactly (no glob, nothing else to match). */
function peerName(s: Selector): { peer: string; project: string } | undefined {
  const keys = Object.keys(s).sort().join(',');
  if (keys === 'peer' && s.peer) return { peer: s.peer.name, project: s.peer.project };
  if (keys === 'container' && s.container && !/[*?]/.test(s.container)) return { peer: s.container, project: '' };
  if (keys === 'project,service' && s.service && s.project) return { peer: s.service, project: s.project };
  return undefined;
}

function portLabels(ports: readonly PortSpan[] | undefined): string[] | undefined {
  if (!ports) return ['*'];
  if (ports.reduce((n, p) => n + p.to - p.from + 1, 0) > MAX_EXPORTED_PORTS) return undefined;
  return ports.flatMap((p) => Array.from({ length: p.to - p.from + 1 }, (_, i) => String(p.from + i)));
}

/** Every named-peer allowance of the rules that cover `containers` (deduplicated). */
export function namedPeerAllowances(judge: PolicyJudge, containers: readonly Container[]): NamedPeerAllowance[] {
  const found = new Map<string, NamedPeerAllowance>();
  for (const container of containers) {
    for (const [side, peerSide, direction] of [
      ['from', 'to', 'outbound'],
      ['to', 'from', 'inbound'],
    ] as const) {
      for (const rule of judge.rulesCovering(side, container)) {
        const ports = portLabels(rule.ports);
        if (!ports) continue;
        for (const named of rule[peerSide].flatMap((s) => peerName(s) ?? [])) {
          for (const port of ports) {
            const allowance = { container: container.name, direction, ...named, port };
            found.set(JSON.stringify(allowance), allowance);
          }
        }
      }
    }
  }
  return [...found.values()];
}
