import { describe, expect, it } from 'vitest';
import { parsePolicyFile } from '../../../src/policy/policyFile.js';
import { judgeLink, type Link } from '../../../src/policy/policyRules.js';
import { suggestPolicy, type SeenLink } from '../../../src/policy/policySuggestion.js';
import { api, containers, db, stray, web } from './policyFixtures.js';

const seen: SeenLink[] = [
  {
    container: web.name,
    group: { direction: 'outbound', remoteAddress: api.addresses[0]!.address, port: 8080, remoteContainer: api.name },
  },
  { container: api.name, group: { direction: 'inbound', remoteAddress: web.addresses[0]!.address, port: 8080, remoteContainer: web.name } },
  { container: api.name, group: { direction: 'outbound', remoteAddress: db.addresses[0]!.address, port: 5432, remoteContainer: db.name } },
  {
    container: stray.name,
    group: { direction: 'outbound', remoteAddress: db.addresses[0]!.address, port: 5432, remoteContainer: db.name },
  },
  { container: stray.name, group: { direction: 'outbound', remoteAddress: '172.17.0.1', port: 9100, remoteContainer: 'host' } },
  { container: stray.name, group: { direction: 'outbound', remoteAddress: '192.0.2.7', port: 443, remoteContainer: '' } },
  { container: db.name, group: { direction: 'inbound', remoteAddress: '192.0.2.8', port: 5432, remoteContainer: '' } },
  { container: stray.name, group: { direction: 'outbound', remoteAddress: '192.0.2.9', port: '~ephemeral', remoteContainer: '' } },
];

describe('suggestPolicy', () => {
  const text = suggestPolicy(seen, containers, 'seen in a test');
  const rules = parsePolicyFile(text, 'suggested.yaml');

  it('writes one rule per client and server, by compose service where there is one', () => {
    expect(text).toMatch(/^# An expected-links policy suggested by outpost: it allows exactly the links seen in a test\.\n/);
    expect(rules.map((r) => r.name)).toEqual([
      '192.0.2.8 → shop/db',
      'shop/api → shop/db',
      'shop/web → shop/api',
      'stray → 192.0.2.7',
      'stray → 192.0.2.9',
      'stray → host',
      'stray → shop/db',
    ]);
    expect(rules.find((r) => r.name === 'stray → 192.0.2.9')!.ports).toBeUndefined();
    expect(rules.find((r) => r.name === 'shop/web → shop/api')).toMatchObject({
      from: [{ project: 'shop', service: 'web' }],
      to: [{ project: 'shop', service: 'api' }],
      ports: [{ from: 8080, to: 8080 }],
    });
  });

  it('allows every link it was made from, at both ends, and no other port', () => {
    const byName = new Map(containers.map((c) => [c.name, c]));
    for (const { container, group } of seen) {
      const self = { container: byName.get(container)!, host: false };
      const peer = {
        host: group.remoteContainer === 'host',
        address: group.remoteAddress,
        ...(byName.has(group.remoteContainer) ? { container: byName.get(group.remoteContainer)! } : {}),
      };
      const link: Link =
        group.direction === 'outbound'
          ? { client: self, server: peer, port: group.port }
          : { client: peer, server: self, port: group.port };
      expect(judgeLink(rules, link).kind, `${container} ${group.direction} ${group.remoteAddress}:${group.port}`).toBe('allowed');
      if (typeof group.port === 'number') expect(judgeLink(rules, { ...link, port: group.port + 1 }).kind).toBe('unexpected');
    }
  });
});

describe('suggestions by name', () => {
  const resolved: SeenLink = {
    container: stray.name,
    group: { direction: 'outbound', remoteAddress: '192.0.2.7', port: 443, remoteContainer: '' },
    names: ['pay.example.com', 'cdn.example.com'],
  };

  it('names a peer off the host by the name the container resolved it from, not by its address', () => {
    const text = suggestPolicy([resolved], containers, 'seen in a test');
    expect(text).toContain('to: { domain: cdn.example.com }');
    expect(text).not.toContain('192.0.2.7');
    const [rule] = parsePolicyFile(text, 'suggested.yaml');
    // The suggestion allows the link it was made from, judged with the same names.
    const link: Link = {
      client: { container: stray, host: false },
      server: { host: false, address: '192.0.2.7', names: resolved.names! },
      port: 443,
    };
    expect(judgeLink([rule!], link)).toEqual({ kind: 'allowed', rules: [rule!.id] });
  });
});
