import { describe, expect, it } from 'vitest';
import { labelRules } from '../../../src/policy/labelRules.js';
import { parsePolicyFile } from '../../../src/policy/policyFile.js';
import { judgeLink, type Link } from '../../../src/policy/policyRules.js';
import type { Endpoint } from '../../../src/policy/selectors.js';
import { api, containers, db, stray, web } from './policyFixtures.js';

const labels = containers.flatMap((c) => labelRules(c).rules);
const end = (c: (typeof containers)[number]): Endpoint => ({ container: c, host: false, address: c.addresses[0]!.address });
const link = (client: Endpoint, server: Endpoint, port: number | string): Link => ({ client, server, port });
const address = (a: string): Endpoint => ({ host: false, address: a });
const HOST: Endpoint = { host: true, address: '172.17.0.1' };

describe('judgeLink with the labels of a real compose-like project', () => {
  it('allows what both ends expect', () => {
    // web's own rules allow api:8080 twice: by service, and by its network (10.0.0.0/8).
    expect(judgeLink(labels, link(end(web), end(api), 8080))).toEqual({
      kind: 'allowed',
      rules: ['label:shop-web:outbound:1', 'label:shop-web:outbound:3', 'label:shop-api:inbound:1'],
    });
    expect(judgeLink(labels, link(end(api), end(db), 5432)).kind).toBe('allowed');
  });

  it('finds the stray connection unexpected by the server it reached, and a wrong port by the client', () => {
    expect(judgeLink(labels, link(end(stray), end(db), 5432))).toEqual({ kind: 'unexpected', side: 'server', container: 'shop-db' });
    expect(judgeLink(labels, link(end(web), end(api), 9000))).toEqual({ kind: 'unexpected', side: 'server', container: 'shop-api' });
    expect(judgeLink(labels, link(end(web), address('192.0.2.1'), 8080))).toEqual({
      kind: 'unexpected',
      side: 'client',
      container: 'shop-web',
    });
    // A label entry that did not parse ("cache:99999") allows nothing.
    expect(judgeLink(labels, link(end(api), address('10.213.63.9'), 99999))).toMatchObject({ kind: 'unexpected', side: 'client' });
  });

  it('matches host, a CIDR and an IPv6 CIDR with its port', () => {
    expect(judgeLink(labels, link(end(web), HOST, 9100)).kind).toBe('allowed');
    expect(judgeLink(labels, link(end(web), HOST, 22)).kind).toBe('unexpected');
    expect(judgeLink(labels, link(end(web), address('10.99.0.1'), 1234)).kind).toBe('allowed');
    expect(judgeLink(labels, link(end(web), address('fd00::5'), 443)).kind).toBe('allowed');
    expect(judgeLink(labels, link(end(web), address('fd00::5'), 80)).kind).toBe('unexpected');
    expect(judgeLink(labels, link(end(web), address('fd01::5'), 443)).kind).toBe('unexpected');
  });

  it('leaves a link that no rule covers unpoliced, and lets no container allow itself into another', () => {
    expect(judgeLink(labels, link(end(stray), address('192.0.2.1'), 443))).toEqual({ kind: 'unpoliced' });
    // web may call anything in 10.0.0.0/8 (its own label), but db expects only api.
    expect(judgeLink(labels, link(end(web), end(db), 5432))).toEqual({ kind: 'unexpected', side: 'server', container: 'shop-db' });
  });

  it('merges file rules with labels: a file rule allows what a label does not', () => {
    const file = parsePolicyFile(
      'rules:\n  - from: {container: stray}\n    to: {project: shop, service: db}\n    ports: [5432]\n  - from: {label: team=payments}\n    to: {cidr: 10.213.63.0/24}\n',
      'p.yaml',
    );
    const rules = [...file, ...labels];
    expect(judgeLink(rules, link(end(stray), end(db), 5432))).toEqual({ kind: 'allowed', rules: ['file:2'] });
    // stray is covered now (the file names it in from): its other outbound links are unexpected.
    expect(judgeLink(rules, link(end(stray), address('192.0.2.1'), 443))).toMatchObject({ kind: 'unexpected', side: 'client' });
    // A label selector covers api, and allows it its own network.
    expect(judgeLink(rules, link(end(api), address('10.213.63.77'), 6379)).kind).toBe('allowed');
  });

  it('matches only port-less rules for a link between two ephemeral ports', () => {
    const rules = parsePolicyFile('rules:\n  - from: "*"\n    to: host\n    ports: [1-65535]\n', 'p.yaml');
    expect(judgeLink(rules, link(end(stray), HOST, '~ephemeral')).kind).toBe('unexpected');
    const any = parsePolicyFile('rules:\n  - from: "*"\n    to: host\n', 'p.yaml');
    expect(judgeLink(any, link(end(stray), HOST, '~ephemeral')).kind).toBe('allowed');
  });
});
