import { describe, expect, it } from 'vitest';
import { labelRules } from '../../../src/policy/labelRules.js';
import { MAX_EXPORTED_PORTS, namedPeerAllowances } from '../../../src/policy/namedPeers.js';
import { parsePolicyFile } from '../../../src/policy/policyFile.js';
import { PolicyJudge } from '../../../src/policy/policyRules.js';
import { api, containers, db, web } from './policyFixtures.js';

const text = (a: { container: string; direction: string; peer: string; project: string; port: string }) =>
  `${a.container} ${a.direction} ${a.peer}${a.project ? ` (service of ${a.project})` : ''}:${a.port}`;

describe('namedPeerAllowances (peers allowed by name, for hosts where only an address is seen)', () => {
  it("exports a container's label entries that name a peer, not its addresses, CIDRs or host", () => {
    const judge = new PolicyJudge(containers.flatMap((c) => labelRules(c).rules));
    expect(namedPeerAllowances(judge, containers).map(text).sort()).toEqual(
      [
        // web: api:8080, host:9100, 10.0.0.0/8, [fd00::/64]:443 → only api.
        'shop-web outbound api (service of shop):8080',
        // api: inbound web:8080; outbound db:5432 (cache:99999 and "bad peer" do not parse).
        'shop-api inbound web (service of shop):8080',
        'shop-api outbound db (service of shop):5432',
        'shop-db inbound api (service of shop):5432',
      ].sort(),
    );
    expect([web.name, api.name, db.name]).toEqual(['shop-web', 'shop-api', 'shop-db']);
  });

  it('exports file rules naming a container exactly, or a service with its project, on each side they cover', () => {
    const rules = parsePolicyFile(
      [
        'rules:',
        '  - from: { container: shop-web }',
        '    to: [{ container: payments }, { container: "pay-*" }, { image: "redis:*" }]',
        '    ports: [443]',
        '  - from: { service: web, project: shop }',
        '    to: { service: ledger, project: bank }',
        '  - from: { container: shop-api }',
        '    to: { container: archive }',
        `    ports: ["1-${MAX_EXPORTED_PORTS + 1}"]`,
        '',
      ].join('\n'),
      'policy.yaml',
    );
    const allowances = namedPeerAllowances(new PolicyJudge(rules), containers).map(text);
    expect(allowances.sort()).toEqual(['shop-web outbound ledger (service of bank):*', 'shop-web outbound payments:443'].sort());
  });
});
