/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// (page.evaluate() callbacks run in the browser.)
import { readFile } from 'node:fs/promises';
import type { Browser } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { launchBrowser, openWatchedPage, screenshot, type WatchedPage } from '../support/browser.js';
import { type Scenario, docker, waitFor } from '../support/docker.js';
import { test } from '../support/lab.js';
import type { TestExporter } from '../support/exporter.js';
import type { ConnectionEvent } from '../../src/events/connectionEvent.js';
import { edgeId, GRAPH_LIMITS, type LinkGraph } from '../../src/map/graphModel.js';

const HOST_PORT = 39094;
const HOSTILE_SERVICE = '<img src=x onerror=alert(1)>';
const HOSTILE_PROJECT = '<script>alert(2)</script>';

interface ConnectionsEntry {
  name: string;
  established: { address: string; port: number | string; direction: string; remote_container: string; count: number }[];
}

/**
 * The graph /connections describes, as the page is to draw it: a node per container and per peer
 * (`host`, an address off the host), an edge per client, server and port with the larger of its
 * two ends' open counts. Links with a container that is not running are left out.
 */
function graphOf(entries: ConnectionsEntry[]): { nodes: string[]; edges: string[] } {
  const names = new Set(entries.map((e) => e.name));
  const nodes = new Set(names);
  const edges = new Map<string, number>();
  for (const entry of entries) {
    for (const l of entry.established) {
      if (l.remote_container && l.remote_container !== 'host' && !names.has(l.remote_container)) continue;
      const peer = l.remote_container || l.address;
      nodes.add(peer);
      const [client, server] = l.direction === 'inbound' ? [peer, entry.name] : [entry.name, peer];
      const key = `${client} → ${server}:${l.port}`;
      edges.set(key, Math.max(edges.get(key) ?? 0, l.count));
    }
  }
  return { nodes: [...nodes].sort(), edges: [...edges].map(([key, open]) => `${key} open ${open}`).sort() };
}

/** What the page shows: its text view, and the graph cytoscape draws. */
async function shown(page: WatchedPage['page']) {
  return page.evaluate(() => {
    const cells = (row: Element) => [...row.querySelectorAll('td')].map((td) => td.textContent);
    const textNodes = [...document.querySelectorAll('#nodes tbody tr')].map((r) => cells(r)[0]!).sort();
    const textEdges = [...document.querySelectorAll('#edges tbody tr')].map((r) => {
      const [, client, server, port, open] = cells(r);
      return `${client} → ${server}:${port} open ${open}`;
    });
    const { cy } = (window as unknown as { outpostMap: { cy: import('cytoscape').Core } }).outpostMap;
    const label = (id: string) => cy.getElementById(id).data('name') as string;
    return {
      text: { nodes: textNodes, edges: textEdges.sort() },
      graph: {
        nodes: cy
          .nodes()
          .filter((n) => !n.isParent())
          .map((n) => n.data('name') as string)
          .sort(),
        edges: cy
          .edges()
          .map(
            (e) => `${label(e.data('source') as string)} → ${label(e.data('target') as string)}:${e.data('port')} open ${e.data('open')}`,
          )
          .sort(),
      },
      refreshes: Number(document.body.dataset.refreshes ?? 0),
    };
  });
}

/** A host of `containers` in projects of 50, container i calling i+1 … i+fanOut on 8080. */
function largeGraph(containers: number, fanOut: number): LinkGraph {
  const name = (i: number) => `c${i % containers}`;
  return {
    up: true,
    collectedAt: new Date().toISOString(),
    nodes: Array.from({ length: containers }, (_, i) => ({
      id: `container:${name(i)}`,
      kind: 'container' as const,
      label: name(i),
      group: `project p${Math.floor(i / 50)}`,
    })),
    edges: Array.from({ length: containers * fanOut }, (_, k) => {
      const [i, j] = [Math.floor(k / fanOut), (k % fanOut) + 1];
      const [source, target] = [`container:${name(i)}`, `container:${name(i + j)}`];
      return {
        id: edgeId(source, target, 8080),
        source,
        target,
        port: 8080,
        open: 1,
        counted: 1,
        unexpectedOpen: 0,
        unexpectedCounted: 0,
        bytesToServer: 0,
        bytesToClient: 0,
        retransmits: 0,
      };
    }),
  };
}

const refreshes = (page: WatchedPage['page']) => page.evaluate(() => Number(document.body.dataset.refreshes ?? 0));

describe('/map in a real browser', () => {
  let scenario: Scenario;
  let exporter: TestExporter;
  let browser: Browser;
  let watched: WatchedPage;
  let net: string;
  let server: string;
  let allowed: string;
  let stray: string;
  let hostile: string;

  /** Waits until page and /connections agree (the page refreshes every 5 s), and returns both. */
  async function agreeing() {
    let last: { expected: ReturnType<typeof graphOf>; page: Awaited<ReturnType<typeof shown>> } | undefined;
    try {
      return await waitFor(
        'the page to show what /connections reports',
        async () => {
          const expected = graphOf(JSON.parse((await exporter.fetchText('/connections')).text) as ConnectionsEntry[]);
          const page = await shown(watched.page);
          last = { expected, page };
          const same = (a: { nodes: string[]; edges: string[] }) => JSON.stringify(a) === JSON.stringify(expected);
          return same(page.text) && same(page.graph) && last;
        },
        20_000,
      );
    } catch (error) {
      // The difference says more than the timeout.
      expect(last?.page.text).toEqual(last?.expected);
      throw error;
    }
  }

  test.beforeAll(async ({ lab }) => {
    scenario = lab.scenario('map');
    net = await scenario.network('net', ['10.213.70.0/24']);
    allowed = scenario.name('allowed');
    // The server expects only `allowed`: `stray`'s connection is drawn as unexpected.
    server = await scenario.run(
      'server',
      ['--network', net, '--label', `outpost.allow.inbound=${allowed}:8080`],
      ['nc', '-ll', '-p', '8080', '-e', 'cat'],
    );
    await scenario.run('allowed', ['--network', net], ['sh', '-c', `sleep 100000 | nc ${server} 8080`]);
    stray = await scenario.run('stray', ['--network', net], ['sh', '-c', `sleep 100000 | nc ${server} 8080`]);
    // Compose labels are free text: these must show as text.
    hostile = await scenario.run(
      'hostile',
      [
        '--network',
        net,
        '--label',
        `com.docker.compose.project=${HOSTILE_PROJECT}`,
        '--label',
        `com.docker.compose.service=${HOSTILE_SERVICE}`,
      ],
      ['nc', '-ll', '-p', '9000', '-e', 'cat'],
    );
    exporter = await lab.exporter();
    await waitFor('both connections to the server', async () => {
      const entries = JSON.parse((await exporter.fetchText('/connections')).text) as ConnectionsEntry[];
      return entries.find((e) => e.name === server)?.established.filter((l) => l.count === 1).length === 2;
    });
    browser = await launchBrowser();
    lab.defer(() => browser.close());
    watched = await openWatchedPage(browser, `${exporter.url}/map`);
  });

  it('serves the page under a strict Content-Security-Policy, linked from the landing page', async () => {
    const response = await fetch(`${exporter.url}/map`);
    expect(response.headers.get('content-security-policy')).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    expect(await response.text()).not.toMatch(/<script>|<style|\sstyle="|\son[a-z]+="/);
    expect((await exporter.fetchText('/')).text).toContain('href="/map"');
    expect(await watched.page.title()).toBe('Link map · outpost');
  });

  it('draws and lists exactly the nodes and links /connections reports, the unexpected one marked', async () => {
    const { expected } = await agreeing();
    expect(expected.edges).toEqual(expect.arrayContaining([`${allowed} → ${server}:8080 open 1`, `${stray} → ${server}:8080 open 1`]));
    expect(expected.nodes).toEqual(expect.arrayContaining([server, allowed, stray, hostile]));
    const cells = (client: string) => watched.page.locator('#edges tbody tr', { hasText: `${client} → ${server}:8080` }).locator('td');
    const policyOf = (client: string) => cells(client).last().textContent();
    expect(await policyOf(stray)).toBe('unexpected');
    // Its link health: retransmits and the RTT of its open connection (columns 7 and 8).
    expect(await cells(allowed).nth(7).textContent()).toMatch(/^\d+$/);
    expect(await cells(allowed).nth(8).textContent()).toMatch(/^\d+(\.\d+)? ms$/);
    expect(await policyOf(allowed)).toBe('');
    const classes = await watched.page.evaluate(
      (ids) =>
        ids.map((id) =>
          (window as unknown as { outpostMap: { cy: import('cytoscape').Core } }).outpostMap.cy.getElementById(id).classes().join(' '),
        ),
      [`container:${stray}→container:${server}:8080`, `container:${allowed}→container:${server}:8080`],
    );
    expect(classes).toEqual(['unexpected', '']);
    // Each node says what it listens on.
    const drawnLabel = await watched.page.evaluate(
      (id) =>
        (window as unknown as { outpostMap: { cy: import('cytoscape').Core } }).outpostMap.cy.getElementById(id).data('label') as string,
      `container:${server}`,
    );
    expect(drawnLabel).toBe(`${server}\n:8080`);
  });

  /** Clicks an edge where the map draws it; the details panel. */
  const clickEdge = async (id: string) => {
    const at = await watched.page.evaluate((edgeId) => {
      const { cy } = (window as unknown as { outpostMap: { cy: import('cytoscape').Core } }).outpostMap;
      const edge = cy.getElementById(edgeId);
      cy.center(edge);
      return edge.renderedMidpoint();
    }, id);
    const box = (await watched.page.locator('#graph').boundingBox())!;
    await watched.page.mouse.click(box.x + at.x, box.y + at.y);
    return watched.page.locator('#details');
  };

  it("shows an edge's port and counts when it is clicked on the map", async () => {
    const details = await clickEdge(`container:${allowed}→container:${server}:8080`);
    await expect.poll(() => details.locator('h3').textContent()).toBe(`${allowed} → ${server}`);
    const value = (term: string) => details.locator(`dt:text-is("${term}") + dd`).textContent();
    expect(await value('Port')).toBe('8080');
    expect(await value('Open now')).toBe('1');
    expect(await value('Counted')).toBe('1');
    expect(await value('Policy')).toBe('not unexpected');
  });

  it('links a red edge to its events: the process that made the connection, the rules that refused it', async () => {
    const details = await clickEdge(`container:${stray}→container:${server}:8080`);
    await expect.poll(() => details.locator('h3').textContent()).toBe(`${stray} → ${server}`);
    const link = details.locator('dt:text-is("Events") + dd a');
    expect(await link.textContent()).toBe('show');
    const href = (await link.getAttribute('href'))!;
    // Told by the server, whose rules refused it: the stray's connection.
    const { events } = JSON.parse((await exporter.fetchText(href)).text) as { events: ConnectionEvent[] };
    expect(events.map((e) => `${e.container} ${e.direction} ${e.peer.container}:${e.port} ${e.verdict.container}`)).toEqual([
      `${server} inbound ${stray}:8080 ${server}`,
    ]);
    // Open before outpost started, it is named by a process that holds it: the server's nc -ll, or the
    // cat it forked for the connection; as /proc names that pid.
    const { pid, name } = events[0]!.process;
    expect(['nc', 'cat']).toContain(name);
    expect((await readFile(`/proc/${pid}/comm`, 'utf8')).trimEnd()).toBe(name);
    await screenshot(watched.page, 'map-red-edge-details');
  });

  it('writes compose labels as text: no markup, no dialog', async () => {
    const row = watched.page.locator('#nodes tbody tr', { hasText: hostile });
    expect(await row.locator('td').nth(2).textContent()).toBe(`project ${HOSTILE_PROJECT}`);
    await row.locator('button').click();
    expect(await watched.page.locator('#details dt:text-is("Compose service") + dd').textContent()).toBe(HOSTILE_SERVICE);
    expect(await watched.page.locator('img, script:not([src])').count()).toBe(0);
    expect(watched.dialogs).toEqual([]);
  });

  it('shows a container started during the test within two refreshes, and drops a stopped one as fast', async () => {
    const before = await refreshes(watched.page);
    const late = await scenario.run('late', ['--network', net], ['sh', '-c', `sleep 100000 | nc ${server} 8080`]);
    const appeared = await waitFor('the new container on the page', async () => {
      const page = await shown(watched.page);
      return page.text.nodes.includes(late) && page.graph.nodes.includes(late) && page.refreshes;
    });
    expect(appeared - before).toBeLessThanOrEqual(2);

    const beforeStop = await refreshes(watched.page);
    await docker(['rm', '-f', stray]);
    const gone = await waitFor('the stopped container gone from the page', async () => {
      const page = await shown(watched.page);
      return !page.text.nodes.includes(stray) && !page.graph.nodes.includes(stray) && page.refreshes;
    });
    expect(gone - beforeStop).toBeLessThanOrEqual(2);
    await agreeing();
  });

  it('draws a host-network container and a sidecar as /connections reports them, and keeps the other nodes in place', async () => {
    const positionsOf = () =>
      watched.page.evaluate(() => {
        const { cy } = (window as unknown as { outpostMap: { cy: import('cytoscape').Core } }).outpostMap;
        return Object.fromEntries(
          cy
            .nodes()
            .filter((n) => !n.isParent())
            .map((n: import('cytoscape').NodeSingular) => [n.id(), { ...n.position() }]),
        );
      });
    const before = await positionsOf();
    // Its own listener in the host's namespace, and a connection to it from inside.
    const hostnet = await scenario.run(
      'hostnet',
      ['--network', 'host'],
      ['sh', '-c', `nc -ll -p ${HOST_PORT} -e cat & sleep 0.5; sleep 100000 | nc 127.0.0.1 ${HOST_PORT} & wait`],
    );
    // A sidecar in the server's namespace, connected to it over loopback.
    const sidecar = await scenario.run('sidecar', ['--network', `container:${server}`], ['sh', '-c', 'sleep 100000 | nc 127.0.0.1 8080']);
    const { expected } = await waitFor(
      'the new containers and their links on the page',
      async () => {
        const agreed = await agreeing();
        return agreed.expected.nodes.includes(hostnet) && agreed.expected.edges.some((e) => e.startsWith(`${sidecar} → `)) && agreed;
      },
      40_000,
    );
    expect(expected.edges).toEqual(expect.arrayContaining([`${hostnet} → ${hostnet}:${HOST_PORT} open 1`]));
    const after = await positionsOf();
    for (const [id, at] of Object.entries(before)) {
      // To a hundredth of a pixel: the undone shift leaves float rounding.
      const rounded = (p: { x: number; y: number }) => ({ id, x: Math.round(p.x * 100) / 100, y: Math.round(p.y * 100) / 100 });
      if (after[id]) expect(rounded(after[id])).toEqual(rounded(at));
    }
  });

  it('has labelled controls, keyboard focus on every row, no console error, and no request off 127.0.0.1', async () => {
    const { page } = watched;
    expect(await page.getByLabel('Filter by container, project or address').count()).toBe(1);
    expect(await page.getByLabel('Pause refresh').count()).toBe(1);
    await page.getByLabel('Filter by container, project or address').focus();
    // Tab from the filter reaches the rows' buttons; Enter on one shows its details.
    let focused = '';
    for (let i = 0; i < 10 && !focused.startsWith('container:'); i++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.id ?? '');
    }
    expect(focused).toMatch(/^container:/);
    await page.keyboard.press('Enter');
    expect(await page.locator('#details h3').textContent()).toBe(focused.slice('container:'.length));

    await page.getByLabel('Filter by container, project or address').fill(scenario.name('allowed'));
    await expect.poll(async () => (await shown(page)).text.nodes).toEqual([allowed, server].sort());
    await page.getByLabel('Filter by container, project or address').fill('');

    expect(watched.errors).toEqual([]);
    expect(watched.requests.filter((url) => new URL(url).hostname !== '127.0.0.1')).toEqual([]);
    expect(watched.requests.length).toBeGreaterThan(3);
  });

  it('draws a graph over its limits one node per project, and a filter brings its containers back', async () => {
    // The graph's size is what is tested here, not the engine: the page gets it from the test.
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const large = largeGraph(400, 4);
    expect(large.nodes.length).toBeGreaterThan(GRAPH_LIMITS.nodes);
    await page.route('**/map/graph.json', (route) => route.fulfill({ json: large }));
    await page.goto(`${exporter.url}/map`);
    await page.waitForFunction(() => Number(document.body.dataset.refreshes ?? 0) >= 1);
    const drawn = () =>
      page.evaluate(() => {
        const { cy } = (window as unknown as { outpostMap: { cy: import('cytoscape').Core } }).outpostMap;
        const drawnNodes = cy.nodes().filter((n) => !n.isParent());
        return { nodes: drawnNodes.map((n) => n.data('label') as string), edges: cy.edges().length };
      });
    const grouped = await drawn();
    expect(grouped.nodes.sort()).toEqual(Array.from({ length: 8 }, (_, p) => `project p${p} (50)`).sort());
    // Within a project and to the next one: 8 loops and 8 links between neighbours.
    expect(grouped.edges).toBe(16);
    expect(await page.locator('#status').textContent()).toContain('drawn one node per project or network');
    await page.getByLabel('Filter by container, project or address').fill('project p3');
    // The 50 of p3, the 4 calling into it (c146…c149) and the 4 it calls (c200…c203).
    await expect.poll(async () => (await drawn()).nodes.length).toBe(58);
    expect((await drawn()).nodes).toEqual(expect.arrayContaining(['c146', 'c150', 'c199', 'c203']));
    await page.close();
  });

  it('works at 1280×800 and on a phone-width screen (screenshots in test-artifacts/)', async () => {
    const expected = (await agreeing()).expected;
    for (const [name, viewport] of [
      ['map-1280x800', { width: 1280, height: 800 }],
      ['map-phone', { width: 390, height: 844 }],
    ] as const) {
      const fresh = await openWatchedPage(browser, `${exporter.url}/map`, viewport);
      await fresh.page.waitForFunction(() => Number(document.body.dataset.refreshes ?? 0) >= 1);
      // Nothing wider than the screen; the whole graph in view; the same lists.
      expect(await fresh.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
      const inView = await fresh.page.evaluate(() => {
        const { cy } = (window as unknown as { outpostMap: { cy: import('cytoscape').Core } }).outpostMap;
        const box = cy.elements().renderedBoundingBox();
        return box.x1 >= -1 && box.y1 >= -1 && box.x2 <= cy.width() + 1 && box.y2 <= cy.height() + 1;
      });
      expect(inView).toBe(true);
      expect(await fresh.page.locator('#graph canvas').first().isVisible()).toBe(true);
      const page = await shown(fresh.page);
      expect(page.text).toEqual(expected);
      await screenshot(fresh.page, name, viewport.width < 500);
      expect(fresh.errors).toEqual([]);
      await fresh.page.close();
    }
  });
});
