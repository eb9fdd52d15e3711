import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { ContainerLinks } from '../../../src/links/containerLinks.js';
import type { EstablishedGroup } from '../../../src/links/linkGroups.js';
import { createLogger } from '../../../src/base/log.js';
import { ExpectedLinks } from '../../../src/policy/expectedLinks.js';
import { loadPolicyFile } from '../../../src/policy/policyFile.js';
import { policyReport } from '../../../src/http/policyReport.js';
import { api, containers, db, stray, web } from './policyFixtures.js';

function logged() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { log: createLogger('info', 'json', stream), text: () => text };
}

const ip = (c: typeof web) => c.addresses[0]!.address;
const group = (direction: 'inbound' | 'outbound', peer: typeof web, port: number, count = 1): EstablishedGroup => ({
  direction,
  remoteAddress: ip(peer),
  port,
  remoteContainer: peer.name,
  count,
});
const links = (container: typeof web, established: EstablishedGroup[], newConnections: EstablishedGroup[] = []): ContainerLinks => ({
  container,
  listening: [],
  established,
  foldedGroups: 0,
  states: {} as ContainerLinks['states'],
  newConnections,
});

describe('ExpectedLinks', () => {
  it('keeps only the unexpected groups of each container, open and new, and counts what each rule allowed', () => {
    const { log } = logged();
    const policy = new ExpectedLinks({ log });
    const evaluation = policy.evaluate(
      [
        links(web, [group('outbound', api, 8080, 2)]),
        links(api, [group('inbound', web, 8080, 2), group('outbound', db, 5432)]),
        links(db, [group('inbound', api, 5432)], [group('inbound', stray, 5432, 3)]),
        links(stray, [], [group('outbound', db, 5432, 3)]),
      ],
      containers,
    );
    expect(evaluation.unexpected.map((u) => [u.container.name, u.established, u.newConnections])).toEqual([
      ['shop-db', [], [group('inbound', stray, 5432, 3)]],
      ['stray', [], [group('outbound', db, 5432, 3)]],
    ]);
    expect(evaluation.rules).toEqual({ file: 0, label: 7 });
    expect(evaluation.labelErrors).toEqual(new Map([['shop-api', 2]]));
    expect(evaluation.judged).toBe(6);
    expect(evaluation.unexpectedGroups).toBe(2);
    expect(evaluation.allowedBy.get('label:shop-db:inbound:1')).toBe(2);
  });

  it('allows an address by a rule by name while the container resolved it from a matching name, and says which on /policy', () => {
    const client = { ...stray, labels: { 'outpost.allow.outbound': 'api.example.com:443,*.s3.example.net:443' } };
    const resolved = new Map([
      ['192.0.2.1', ['api.example.com']],
      ['192.0.2.2', ['bucket.s3.example.net']],
      ['192.0.2.3', ['evil.example.org']],
    ]);
    let held = true;
    const policy = new ExpectedLinks({
      log: logged().log,
      namesOf: (id, address) => (held && id === client.id ? (resolved.get(address) ?? []) : []),
    });
    const offHost = (address: string): EstablishedGroup => ({
      direction: 'outbound',
      remoteAddress: address,
      port: 443,
      remoteContainer: '',
      count: 1,
    });
    const calls = [links(client, [offHost('192.0.2.1'), offHost('192.0.2.2'), offHost('192.0.2.3'), offHost('192.0.2.4')])];
    const all = [...containers.filter((c) => c.id !== client.id), client];
    const first = policy.evaluate(calls, all);
    expect(first.unexpected[0]?.established.map((g) => g.remoteAddress)).toEqual(['192.0.2.3', '192.0.2.4']);
    expect(first.domainMatches.get(`label:${client.name}:outbound:1`)).toEqual(new Map([['192.0.2.1', ['api.example.com']]]));
    expect(first.domainMatches.get(`label:${client.name}:outbound:2`)).toEqual(new Map([['192.0.2.2', ['bucket.s3.example.net']]]));
    const report = policyReport(policy, all).rules.find((r) => r.id === `label:${client.name}:outbound:2`);
    expect(report?.domain_matches).toEqual([{ address: '192.0.2.2', names: ['bucket.s3.example.net'] }]);
    // The answers no longer hold (TTL and grace over, no connection open): judged by address, unexpected.
    held = false;
    const later = policy.evaluate(calls, all);
    expect(later.unexpected[0]?.established.map((g) => g.remoteAddress)).toEqual(['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4']);
    expect(later.domainMatches.size).toBe(0);
  });

  it('logs the label errors of a container once, however often it is evaluated', () => {
    const { log, text } = logged();
    const policy = new ExpectedLinks({ log });
    for (let i = 0; i < 3; i++) policy.evaluate([], containers);
    expect(text().match(/cache:99999/g)).toHaveLength(1);
    expect(text().match(/bad peer/g)).toHaveLength(1);
  });

  it('judges under the labels of the containers as they are now: a container inspected again with other labels', () => {
    const policy = new ExpectedLinks({ log: logged().log });
    const strayToDb = [links(stray, [group('outbound', db, 5432)])];
    const first = policy.evaluate(strayToDb, containers);
    expect(first.unexpected.map((u) => u.container.name)).toEqual(['stray']);
    // The same containers: the same rules and allowances.
    expect(policy.evaluate(strayToDb, containers).namedPeers).toBe(first.namedPeers);

    // The inventory replaces a container whose labels changed (a new inspect): db now allows stray.
    const relabelled = {
      ...db,
      labels: { ...db.labels, 'outpost.allow.inbound': `${db.labels['outpost.allow.inbound'] ?? ''},stray:5432` },
    };
    const strayOutbound = { ...stray, labels: { ...stray.labels, 'outpost.allow.outbound': 'shop-db:5432' } };
    const now = containers.map((c) => (c === db ? relabelled : c === stray ? strayOutbound : c));
    const second = policy.evaluate([links(strayOutbound, [group('outbound', relabelled, 5432)])], now);
    expect(second.unexpected).toEqual([]);
    expect(second.rules.label).toBe(first.rules.label + 2);
    expect(second.namedPeers).toContainEqual({ container: 'stray', direction: 'outbound', peer: 'shop-db', project: '', port: '5432' });
  });

  it('explains an unexpected link for its event: who refused it, under which rules, and the label line that allows it', () => {
    const policy = new ExpectedLinks({ log: logged().log });
    const explained = policy.explain(stray, group('outbound', db, 5432), containers);
    expect(explained.verdict).toEqual({ kind: 'unexpected', side: 'server', container: 'shop-db' });
    expect(explained.rules).toEqual([
      { id: 'label:shop-db:inbound:1', origin: 'container shop-db, label outpost.allow.inbound="api:5432"' },
    ]);
    expect(explained.allow).toBe('outpost.allow.inbound=api:5432,stray:5432');
    // The line, as the label, allows the link.
    const [label, value] = explained.allow!.split(/=(.*)/s);
    const relabelled = containers.map((c) => (c === db ? { ...db, labels: { ...db.labels, [label!]: value! } } : c));
    expect(policy.explain(stray, group('outbound', relabelled[2]!, 5432), relabelled).verdict.kind).toBe('allowed');
  });

  it('explains a link refused by the policy file with a file rule on one line, which allows it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'outpost-policy-'));
    try {
      const file = join(dir, 'policy.yaml');
      await writeFile(file, 'rules:\n  - from: {container: stray}\n    to: {service: api, project: shop}\n    ports: [8080]\n');
      const policy = new ExpectedLinks({ log: logged().log, file: { path: file, rules: await loadPolicyFile(file) } });
      const explained = policy.explain(stray, group('outbound', db, 5432), containers);
      expect(explained.verdict).toEqual({ kind: 'unexpected', side: 'client', container: 'stray' });
      expect(explained.rules).toEqual([{ id: 'file:2', origin: `${file}:2` }]);
      expect(explained.allow).toBe('- { from: { container: stray }, to: { project: shop, service: db }, ports: [ 5432 ] }');
      // The line, added to the file, allows the link.
      await writeFile(
        file,
        `rules:\n  - from: {container: stray}\n    to: {service: api, project: shop}\n    ports: [8080]\n  ${explained.allow}\n`,
      );
      await policy.reloadFile();
      expect(policy.explain(stray, group('outbound', db, 5432), containers).verdict.kind).toBe('allowed');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports a rule whose side matches no running container on /policy', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'outpost-policy-'));
    const file = join(dir, 'policy.yaml');
    try {
      await writeFile(file, 'rules:\n  - from: {service: web}\n    to: {service: typo}\n    ports: [8080]\n');
      const policy = new ExpectedLinks({ log: logged().log, file: { path: file, rules: await loadPolicyFile(file) } });
      policy.evaluate([], containers);
      const report = policyReport(policy, containers);
      expect(report.rules[0]).toMatchObject({
        id: 'file:2',
        origin: `${file}:2`,
        from: [{ service: 'web' }],
        to: [{ service: 'typo' }],
        ports: ['8080'],
        covers: { outbound: ['shop-web'], inbound: [] },
        warnings: ['to matches no running container'],
      });
      expect(report.label_errors.map((e) => e.container)).toEqual(['shop-api', 'shop-api']);
      expect(report.file).toMatchObject({ path: file, last_reload_success: true });

      // A broken edit keeps the rules in force and says why.
      await writeFile(file, 'rules:\n  - from: {service: web}\n');
      await policy.reloadFile();
      expect(policy.rules([]).map((r) => r.id)).toEqual(['file:2']);
      expect(policyReport(policy, containers).file).toMatchObject({
        last_reload_success: false,
        last_error: expect.stringContaining(':2: rules[0].to: missing') as unknown,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
