import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PolicyLabelError } from '../../../src/base/errors.js';
import { labelRules, parseAllowEntry } from '../../../src/policy/labelRules.js';
import { api, db, stray, web } from './policyFixtures.js';

describe('allow labels (real inspect answers)', () => {
  it('reads every kind of peer: a compose service, host, a CIDR, a bracketed IPv6 CIDR with a port', () => {
    const { rules, errors } = labelRules(web);
    expect(errors).toEqual([]);
    expect(rules.map((r) => ({ to: r.to, ports: r.ports, covers: r.covers }))).toEqual([
      { to: [{ peer: { name: 'api', project: 'shop' } }], ports: [{ from: 8080, to: 8080 }], covers: { from: true, to: false } },
      { to: [{ host: true }], ports: [{ from: 9100, to: 9100 }], covers: { from: true, to: false } },
      { to: [{ cidr: '10.0.0.0/8' }], ports: undefined, covers: { from: true, to: false } },
      { to: [{ cidr: 'fd00::/64' }], ports: [{ from: 443, to: 443 }], covers: { from: true, to: false } },
    ]);
    expect(rules.every((r) => r.from.length === 1 && r.from[0]!.id === web.id)).toBe(true);
  });

  it('names each entry that does not parse, and keeps the container covered by the rest', () => {
    const { rules, errors } = labelRules(api);
    expect(errors.map((e) => e.message)).toEqual([
      `container shop-api: label outpost.allow.outbound: "cache:99999": "99999" is not a port from 1 to 65535 or a range such as 8000-8099`,
      `container shop-api: label outpost.allow.outbound: "bad peer": the peer is not a container or service name, host, an IP address, a CIDR, a DNS name or *`,
    ]);
    expect(errors.every((e) => e instanceof PolicyLabelError && e.code === 'OUTPOST_INVALID_POLICY_LABEL')).toBe(true);
    expect(rules.map((r) => r.id)).toEqual(['label:shop-api:outbound:1', 'label:shop-api:inbound:1']);
  });

  it('covers a container whose label has no valid entry, allowing nothing', () => {
    const broken = { ...stray, labels: { 'outpost.allow.outbound': 'not a peer' } };
    const { rules, errors } = labelRules(broken);
    expect(errors).toHaveLength(1);
    expect(rules).toEqual([expect.objectContaining({ to: [], covers: { from: true, to: false } })]);
    expect(labelRules(stray)).toEqual({ rules: [], errors: [] });
    expect(labelRules(db).rules[0]!.from).toEqual([{ peer: { name: 'api', project: 'shop' } }]);
  });

  it.each([
    ['*', { peers: [{ any: true }] }],
    ['*:53', { peers: [{ any: true }], ports: [{ from: 53, to: 53 }] }],
    ['10.1.2.3:5432', { peers: [{ cidr: '10.1.2.3' }], ports: [{ from: 5432, to: 5432 }] }],
    ['fd00::1', { peers: [{ cidr: 'fd00::1' }] }],
    ['[fd00::1]:8000-8099', { peers: [{ cidr: 'fd00::1' }], ports: [{ from: 8000, to: 8099 }] }],
    ['redis', { peers: [{ peer: { name: 'redis', project: 'p' } }] }],
    // A name with a dot may be a container's or a DNS name: both.
    ['redis_1.a-b', { peers: [{ peer: { name: 'redis_1.a-b', project: 'p' } }, { domain: 'redis_1.a-b' }] }],
    [
      'API.Example.com:443',
      { peers: [{ peer: { name: 'API.Example.com', project: 'p' } }, { domain: 'api.example.com' }], ports: [{ from: 443, to: 443 }] },
    ],
    ['*.s3.example.net:443', { peers: [{ domain: '*.s3.example.net' }], ports: [{ from: 443, to: 443 }] }],
  ])('parses %s', (entry, expected) => {
    expect(parseAllowEntry(entry, 'p')).toEqual(expected);
  });

  it.each([
    'api:',
    ':80',
    'api:0',
    'api:80-79',
    '[api]:80',
    '10.0.0.0/40',
    'a b',
    'api:80:90',
    '-x',
    '*.',
    '*.com-',
    '*x.example.com',
    'a.*.example.com',
  ])('refuses %s with a reason', (entry) => {
    expect(parseAllowEntry(entry, 'p')).toMatch(new RegExp(`^"${entry.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}": `));
  });

  it('never throws on any label value: each entry is a rule or a named error (fuzzed)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), fc.string({ maxLength: 80 }), (outbound, inbound) => {
        const c = { ...stray, labels: { 'outpost.allow.outbound': outbound, 'outpost.allow.inbound': inbound } };
        const { rules, errors } = labelRules(c);
        const entries = [outbound, inbound].flatMap((v) => v.split(',').filter((e) => e.trim() !== '')).length;
        const covering = rules.filter((r) => r.to.length === 0 || r.from.length === 0).length;
        expect(rules.length - covering + errors.length).toBe(entries);
        for (const e of errors) expect(e).toBeInstanceOf(PolicyLabelError);
      }),
      { numRuns: 2000 },
    );
  });
});
