import { describe, expect, it } from 'vitest';
import type { ConnectionEvent } from '../../src/events/connectionEvent.js';
import type { ConnectionsEntry } from '../../src/http/connectionsJson.js';
import type { LinkGraph } from '../../src/map/graphModel.js';
import { docker, kernelSockets, pidOf, processesNamed, waitFor, type Scenario } from '../support/docker.js';
import { test } from '../support/lab.js';
import type { TestExporter } from '../support/exporter.js';
import { select, type Series } from '../support/exposition.js';
import { OffHostPeers } from '../support/offHostPeers.js';
import { launchBrowser, openWatchedPage, screenshot } from '../support/browser.js';

/**
 * Peers off the host named by the DNS answers each container received. A namespace of the
 * test's own stands for the internet: dnsmasq answers allowed.test and stray.test with two of its
 * addresses, a third is dialed without a lookup. One container asks through Docker's embedded DNS
 * (a user-defined network, 127.0.0.11 forwarding to dnsmasq), one asks dnsmasq itself (the
 * default bridge). Each allows only allowed.test on 8080 (a rule by name), fetches allowed.test,
 * then stray.test (held open) and dials the third address with nc (held open).
 */
describe('peers named by the domain the container resolved', () => {
  let peers: OffHostPeers;
  let scenario: Scenario;
  let exporter: TestExporter;
  let series: Series[];
  let events: ConnectionEvent[];
  const c = { user: '', bridge: '' };
  const address = { allowed: '10.213.86.3', stray: '10.213.86.4', direct: '10.213.86.5' };

  test.beforeAll(async ({ lab }) => {
    peers = await OffHostPeers.create('names', '10.213.86', { 'allowed.test': 3, 'stray.test': 4 }, { 3: 'http', 4: 'hold', 5: 'hold' });
    lab.defer(() => peers.close());
    scenario = lab.scenario('names');
    // Not internal: its containers reach the test's namespace (and nothing else is called).
    const net = await scenario.network('net', ['10.213.87.0/24'], { internal: false });
    const options = ['--dns', peers.dnsServer, '--label', 'outpost.allow.outbound=allowed.test:8080'];
    c.user = await scenario.run('user', ['--network', net, ...options], ['sleep', '100000']);
    c.bridge = await scenario.run('bridge', ['--network', 'bridge', ...options], ['sleep', '100000']);
    exporter = await lab.exporter();
    await exporter.scrape(); // each namespace's socket is opened: what it is answered from now on is read

    for (const container of Object.values(c)) {
      await docker(['exec', container, 'wget', '-q', '-O', '/dev/null', 'http://allowed.test:8080/']);
      await docker(['exec', '-d', container, 'wget', '-q', '-O', '/dev/null', 'http://stray.test:8080/']);
      await docker(['exec', '-d', container, 'sh', '-c', `sleep 100000 | nc ${address.direct} 8080`]);
    }
    await waitFor('the calls to be up', async () => {
      for (const container of Object.values(c)) {
        const open = (await kernelSockets(await pidOf(container))).filter((s) => s.state === 'established' && s.remotePort === 8080);
        if (open.length !== 2) return false;
      }
      return true;
    });
    series = await exporter.scrape();
    const { text } = await exporter.fetchText('/events');
    events = (JSON.parse(text) as { events: ConnectionEvent[] }).events;
  }, 60_000);

  test.afterAll(({ lab }) => lab.close());

  it("reads the answers with the ebpf source's program", () => {
    expect(exporter.logs()).toMatch(/level=info .*source=ebpf dns=ebpf .*msg="outpost listening"/);
  });

  it('asked the test DNS server each name once per container, through Docker or straight', () => {
    // The oracle of what was answered: dnsmasq's own log.
    expect(peers.queriesFor('allowed.test')).toBeGreaterThanOrEqual(2);
    expect(peers.queriesFor('stray.test')).toBeGreaterThanOrEqual(2);
  });

  it('names the two resolved addresses in container_peer_name_info, and not the one dialed without a lookup', () => {
    for (const container of Object.values(c)) {
      const names = select(series, 'container_peer_name_info', { container }).map((s) => `${s.labels.remote_address} ${s.labels.name}`);
      expect(names.sort(), container).toEqual([`${address.allowed} allowed.test`, `${address.stray} stray.test`]);
    }
    expect(select(series, 'outpost_dns_reading', {})[0]?.value).toBe(1);
  });

  it('allows the address the container resolved from allowed.test; stray.test and the address dialed without a lookup are unexpected', () => {
    for (const container of Object.values(c)) {
      const unexpected = select(series, 'container_tcp_unexpected_connections_total', { container }).map(
        (s) => `${s.labels.remote_address}:${s.labels.port} ${s.value}`,
      );
      expect(unexpected.sort(), container).toEqual([`${address.stray}:8080 1`, `${address.direct}:8080 1`]);
    }
  });

  it('makes one event per unexpected connection, with the name and the process that made it', async () => {
    for (const container of Object.values(c)) {
      const mine = events.filter((e) => e.container === container);
      expect(mine.map((e) => `${e.peer.address}:${e.port}`).sort(), container).toEqual([`${address.stray}:8080`, `${address.direct}:8080`]);
      const [wget] = await processesNamed(container, 'wget');
      const ncs = await processesNamed(container, 'nc');
      const toStray = mine.find((e) => e.peer.address === address.stray)!;
      expect(toStray.peer).toEqual({ container: '', address: address.stray, names: ['stray.test'] });
      expect(toStray.process).toEqual({ pid: wget!.pid, name: 'wget', executable: wget!.executable });
      const direct = mine.find((e) => e.peer.address === address.direct)!;
      expect(direct.peer).toEqual({ container: '', address: address.direct });
      expect(ncs.map((p) => p.pid)).toContain(direct.process.pid);
      expect(direct.process.name).toBe('nc');
      // The line that would allow each: the name where the container resolved one, else the address.
      expect(toStray.allow).toBe('outpost.allow.outbound=allowed.test:8080,stray.test:8080');
      expect(direct.allow).toBe(`outpost.allow.outbound=allowed.test:8080,${address.direct}:8080`);
    }
    expect(exporter.logs()).toMatch(new RegExp(`container=${c.user} .*peer_names=stray.test`));
  });

  it('shows the names on /connections and on the map, and the address where there is none', async () => {
    const connections = JSON.parse((await exporter.fetchText('/connections')).text) as ConnectionsEntry[];
    for (const container of Object.values(c)) {
      const links = connections.find((e) => e.name === container)!.established;
      const namesOf = (a: string) => links.find((l) => l.address === a)?.names;
      expect(namesOf(address.allowed), container).toEqual(['allowed.test']);
      expect(namesOf(address.stray), container).toEqual(['stray.test']);
      expect(namesOf(address.direct), container).toEqual([]);
    }
    const graph = JSON.parse((await exporter.fetchText('/map/graph.json')).text) as LinkGraph;
    const node = (a: string) => graph.nodes.find((n) => n.id === `peer:${a}`);
    expect(node(address.allowed)).toMatchObject({ kind: 'external', label: 'allowed.test', names: ['allowed.test'] });
    expect(node(address.stray)).toMatchObject({ kind: 'external', label: 'stray.test', names: ['stray.test'] });
    expect(node(address.direct)).toMatchObject({ kind: 'external', label: address.direct });
    expect(node(address.direct)?.names).toBeUndefined();
  });

  it('shows on /policy the addresses the rule by name allowed, and suggests rules by name', async () => {
    const report = JSON.parse((await exporter.fetchText('/policy')).text) as {
      rules: { id: string; domain_matches?: { address: string; names: string[] }[] }[];
    };
    for (const container of Object.values(c)) {
      const rule = report.rules.find((r) => r.id === `label:${container}:outbound:1`);
      expect(rule?.domain_matches, container).toEqual([{ address: address.allowed, names: ['allowed.test'] }]);
    }
    const suggested = (await exporter.fetchText('/policy/suggest')).text;
    for (const container of Object.values(c)) {
      expect(suggested).toContain(`from: { container: ${container} }`);
    }
    expect(suggested).toMatch(/to: \{ domain: allowed\.test \}/);
    expect(suggested).toMatch(/to: \{ domain: stray\.test \}/);
    expect(suggested).toContain(`to: { cidr: ${address.direct} }`);
    expect(suggested).not.toContain(`cidr: ${address.allowed}`);
  });

  it('draws a peer off the host by its name, as a person sees it: the text view, the details, a screenshot', async () => {
    const browser = await launchBrowser();
    try {
      const watched = await openWatchedPage(browser, `${exporter.url}/map`);
      const row = watched.page.locator('#nodes tbody tr', { hasText: 'stray.test' });
      await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(1);
      expect(await row.locator('td').nth(4).textContent()).toBe(address.stray);
      await row.locator('button').click();
      const value = (term: string) => watched.page.locator(`#details dt:text-is("${term}") + dd`).textContent();
      expect(await watched.page.locator('#details h3').textContent()).toBe('stray.test');
      expect(await value('Resolved from')).toBe('stray.test');
      expect(await value('Addresses')).toBe(address.stray);
      // The address dialed without a lookup keeps its address as its name.
      expect(await watched.page.locator('#nodes tbody tr', { hasText: address.direct }).locator('button').textContent()).toBe(
        address.direct,
      );
      await screenshot(watched.page, 'map-named-peer');
      expect(watched.errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});

/**
 * The other reader: with the netlink source (no eBPF), a packet socket in each container's
 * namespace. A container on a user-defined network (Docker's embedded DNS) and one on the default
 * bridge each look a name up and hold a connection to its address open (netlink sees only what is
 * open at a scrape).
 */
describe('peers named by packet sockets, with the netlink source', () => {
  let exporter: TestExporter;
  const c = { user: '', bridge: '' };
  const address = '10.213.89.3';

  test.beforeAll(async ({ lab }) => {
    const peers = await OffHostPeers.create('pktsock', '10.213.89', { 'held.test': 3 }, { 3: 'hold' });
    lab.defer(() => peers.close());
    const scenario = lab.scenario('names-pktsock');
    const net = await scenario.network('net', ['10.213.90.0/24'], { internal: false });
    const options = ['--dns', peers.dnsServer];
    c.user = await scenario.run('user', ['--network', net, ...options], ['sleep', '100000']);
    c.bridge = await scenario.run('bridge', ['--network', 'bridge', ...options], ['sleep', '100000']);
    exporter = await lab.exporter({ socketSource: 'netlink' });
    await exporter.scrape(); // each namespace's socket is opened: what it is answered from now on is read
    for (const container of Object.values(c)) {
      await docker(['exec', '-d', container, 'sh', '-c', 'sleep 100000 | nc held.test 8080']);
    }
    await waitFor('the calls to be up', async () => {
      for (const container of Object.values(c)) {
        const open = (await kernelSockets(await pidOf(container))).filter((s) => s.state === 'established' && s.remoteAddress === address);
        if (open.length !== 1) return false;
      }
      return true;
    });
    expect(peers.queriesFor('held.test')).toBeGreaterThanOrEqual(2);
  }, 60_000);

  test.afterAll(({ lab }) => lab.close());

  it('reads the answers with a packet socket in each namespace, and names the address each container resolved', async () => {
    expect(exporter.logs()).toMatch(/level=info .*source=netlink dns=packet_socket .*msg="outpost listening"/);
    const series = await exporter.scrape();
    for (const container of Object.values(c)) {
      const names = select(series, 'container_peer_name_info', { container }).map((s) => `${s.labels.remote_address} ${s.labels.name}`);
      expect(names, container).toEqual([`${address} held.test`]);
    }
    expect(select(series, 'outpost_dns_reading', {})[0]?.value).toBe(1);
  });
});

/**
 * A name that is markup: dnsmasq answers `<img src=x onerror=alert(1)>.test` (DNS carries any
 * byte in a label). outpost writes it as dig does, every byte but [a-z0-9_-] as \DDD; the map,
 * /connections and /events show that text, and the page runs nothing of it.
 */
describe('a hostile name in a DNS answer', () => {
  const HOSTILE = '<img src=x onerror=alert(1)>.test';
  // dig's form of it: < \060, space \032, = \061, ( \040, ) \041, > \062.
  const WRITTEN = '\\060img\\032src\\061x\\032onerror\\061alert\\0401\\041\\062.test';
  const address = '10.213.88.3';
  let exporter: TestExporter;
  let container: string;

  test.beforeAll(async ({ lab }) => {
    const peers = await OffHostPeers.create('hostile', '10.213.88', { [HOSTILE]: 3 }, { 3: 'hold' });
    lab.defer(() => peers.close());
    const scenario = lab.scenario('hostile-names');
    container = await scenario.run(
      'asker',
      ['--network', 'bridge', '--dns', peers.dnsServer, '--label', 'outpost.allow.outbound=nobody:1'],
      ['sleep', '100000'],
    );
    exporter = await lab.exporter();
    await exporter.scrape(); // the namespace's socket is opened: the answer to come is read
    await docker(['exec', container, 'nslookup', '-type=a', HOSTILE]);
    expect(peers.queriesFor(HOSTILE)).toBeGreaterThanOrEqual(1);
    await docker(['exec', '-d', container, 'sh', '-c', `sleep 100000 | nc ${address} 8080`]);
    await waitFor('the connection to be up', async () =>
      (await kernelSockets(await pidOf(container))).some((s) => s.state === 'established' && s.remoteAddress === address),
    );
    await exporter.scrape();
  }, 60_000);

  it('writes it as text in /connections and /events, as dig writes it', async () => {
    const links = (JSON.parse((await exporter.fetchText('/connections')).text) as ConnectionsEntry[]).find(
      (e) => e.name === container,
    )!.established;
    expect(links.find((l) => l.address === address)?.names).toEqual([WRITTEN]);
    const { events } = JSON.parse((await exporter.fetchText(`/events?container=${container}`)).text) as { events: ConnectionEvent[] };
    expect(events.map((e) => e.peer)).toEqual([{ container: '', address, names: [WRITTEN] }]);
  });

  it('draws it on the map as text, as a person sees it: no markup made, nothing run', async () => {
    const browser = await launchBrowser();
    try {
      const watched = await openWatchedPage(browser, `${exporter.url}/map`);
      const row = watched.page.locator('#nodes tbody tr', { hasText: WRITTEN });
      await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(1);
      await row.locator('button').click();
      expect(await watched.page.locator('#details h3').textContent()).toBe(WRITTEN);
      expect(await watched.page.locator('#details dt:text-is("Resolved from") + dd').textContent()).toBe(WRITTEN);
      expect(await watched.page.locator('img, script:not([src])').count()).toBe(0);
      await screenshot(watched.page, 'map-hostile-name');
      expect(watched.dialogs).toEqual([]);
      expect(watched.errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
