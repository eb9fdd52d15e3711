/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// (page.evaluate() callbacks run in the browser.)
/**
 * The link map's layout time in the test browser (Debian's Chromium), on real containers and
 * real links: issue #12 asks that 200 containers and 1,000 links be laid out in under 2 s.
 *
 *   npm run bench:map -- --containers 200 --connections 1000 [--rounds 5] [--keep] [--out bench/results/x.json]
 *
 * Container i connects once to each of i+1 … i+M/N: M distinct links. Each round opens /map in a
 * new page and reads the time the page measured for its first layout (cytoscape, fcose).
 * Needs root, a Docker Engine, the test image (built by the integration tests) and chromium.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { launchBrowser } from '../test/support/browser.js';
import { OutpostProcess, summarize, wholeNumberFlag } from './measure.js';
import { createScenario, removeScenario } from './scenario.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const log = (line: string) => process.stderr.write(`bench:map: ${line}\n`);

const { values } = parseArgs({
  options: {
    containers: { type: 'string' },
    connections: { type: 'string' },
    rounds: { type: 'string' },
    keep: { type: 'boolean' },
    out: { type: 'string' },
  },
  strict: true,
});
const whole = (name: string, value: string | undefined, fallback: number) => wholeNumberFlag('bench:map', name, value, fallback, 1);
const N = whole('containers', values.containers, 200);
const M = whole('connections', values.connections, 1000);
const R = whole('rounds', values.rounds, 5);
const fanOut = Math.min(N - 1, Math.ceil(M / N));

await createScenario(N, M, log, false, fanOut);
const outpost = await OutpostProcess.start(join(ROOT, 'dist', 'main.js'), 'auto');
const browser = await launchBrowser();
try {
  let graph: { nodes: unknown[]; edges: { source: string; open: number }[] } = { nodes: [], edges: [] };
  for (let i = 0; ; i++) {
    graph = (await (await fetch(`${outpost.url}/map/graph.json`)).json()) as typeof graph;
    const links = graph.edges.filter((e) => e.source.startsWith('container:outpost-bench-') && e.open > 0).length;
    if (links >= M) break;
    if (i > 300) throw new Error(`only ${links} of ${M} links came up`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  log(`${graph.nodes.length} nodes, ${graph.edges.length} links; ${R} rounds of /map in chromium`);
  const layoutMs: number[] = [];
  const firstDrawMs: number[] = [];
  for (let r = 0; r < R; r++) {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const started = Date.now();
    await page.goto(`${outpost.url}/map`);
    await page.waitForFunction(() => Number(document.body.dataset.refreshes ?? 0) >= 1, null, { timeout: 60_000 });
    firstDrawMs.push(Date.now() - started);
    layoutMs.push(await page.evaluate(() => (window as unknown as { outpostMap: { lastLayoutMs: number } }).outpostMap.lastLayoutMs));
    if (r === 0) {
      mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
      await page.screenshot({ path: join(ROOT, 'test-artifacts', `map-N${N}-M${M}.png`) });
    }
    await page.close();
  }
  const result = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, kernel: release(), node: process.version, browser: browser.version() },
    params: { containers: N, connections: M, rounds: R, fanOut },
    graph: { nodes: graph.nodes.length, links: graph.edges.length },
    layoutMs: summarize(layoutMs),
    firstDrawMs: summarize(firstDrawMs),
  };
  log(
    `layout ${result.layoutMs.median} ms median (p95 ${result.layoutMs.p95}); page to first drawing ${result.firstDrawMs.median} ms median`,
  );
  const out = values.out ?? join(ROOT, 'bench', 'results', `map-N${N}-M${M}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  log(`written to ${out}`);
} finally {
  await browser.close();
  await outpost.stop();
  if (!values.keep) await removeScenario();
}
