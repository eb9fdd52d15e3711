/**
 * outpost against the kernel's floor and the ancestor, on the same containers in one run: with
 * each of its sources that read the kernel (ebpf, netlink, procfs), one instance each.
 *
 *   npm run bench -- --containers 100 --connections 100 [--rounds 20] [--ancestor-rounds 3]
 *                    [--memory-collections 1000] [--baseline DIR] [--policy] [--keep] [--out bench/results/x.json]
 *
 * --baseline DIR: another outpost checkout, built (npm ci && npm run build), measured in the same
 * rounds as this one: the cost of a change as a ratio in one run.
 * --policy: every container carries outpost.allow.* labels naming its links, so every link is
 * judged at both ends (and allowed): the cost of the expected-links policy.
 *
 * Needs root, a Docker Engine, cc, and the test image (built by the integration tests).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EbpfRead, OutpostProcess, ancestorRound, floorRound, summarize, wholeNumberFlag, type Scrape } from './measure.js';
import { createScenario, removeScenario } from './scenario.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

const { values } = parseArgs({
  options: {
    containers: { type: 'string' },
    connections: { type: 'string' },
    rounds: { type: 'string' },
    'ancestor-rounds': { type: 'string' },
    'memory-collections': { type: 'string' },
    baseline: { type: 'string' },
    keep: { type: 'boolean' },
    policy: { type: 'boolean' },
    out: { type: 'string' },
  },
  strict: true,
});
if (values.containers === undefined) {
  process.stderr.write(
    'usage: npm run bench -- --containers N [--connections M] [--rounds R] [--ancestor-rounds A] [--memory-collections K] [--baseline DIR] [--policy] [--keep] [--out FILE]\n',
  );
  process.exit(2);
}
const positive = (name: string, value: string | undefined, fallback: number) => wholeNumberFlag('bench', name, value, fallback);
const N = positive('containers', values.containers, 10);
const M = positive('connections', values.connections, 100);
const R = Math.max(1, positive('rounds', values.rounds, 20));
const A = positive('ancestor-rounds', values['ancestor-rounds'], 3);
const K = positive('memory-collections', values['memory-collections'], 0);

function sysctl(name: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

const floorBinary = join(ROOT, 'build', 'bench', 'floor');
mkdirSync(dirname(floorBinary), { recursive: true });
execFileSync('cc', ['-O2', '-o', floorBinary, join(ROOT, 'bench', 'floor.c')]);

const containers = await createScenario(N, M, log, values.policy ?? false);
const SOURCES = ['ebpf', 'netlink', 'procfs'] as const;
type Source = (typeof SOURCES)[number];
const instances = {} as Record<Source, OutpostProcess>;
for (const source of SOURCES) instances[source] = await OutpostProcess.start(ROOT, source);
// The timing and memory subject: what `auto` picks as root.
const auto = instances.ebpf;
// Loaded after the instances' own, so that it knows their sockets from its seed walk too.
const ebpfRead = new EbpfRead(ROOT);
const baseline = values.baseline ? await OutpostProcess.start(values.baseline, 'auto') : undefined;
try {
  // Until every connection is up at both ends (each end in its own namespace).
  for (let i = 0; ; i++) {
    const text = await auto.metricsText();
    const count = [...text.matchAll(/^container_tcp_sockets\{container="outpost-bench-\d+",[^}]*state="established"\} (\d+)$/gm)].reduce(
      (a, m) => a + Number(m[1]),
      0,
    );
    if (count >= 2 * M) break;
    if (i > 600) throw new Error(`only ${count} of ${2 * M} connection ends came up`);
    await new Promise((r) => setTimeout(r, 500));
  }
  for (let i = 0; i < 5; i++)
    await Promise.all([...SOURCES.map((s) => instances[s].scrape()), baseline?.scrape(), floorRound(floorBinary, containers)]);

  log(`measuring ${R} rounds: floor, outpost with ${SOURCES.join(', ')}${baseline ? ', the baseline (auto)' : ''}`);
  const floor: number[] = [];
  let floorSockets = 0;
  const ebpfReads: number[] = [];
  let ebpfReadSockets = 0;
  const scrapes = { ebpf: [] as Scrape[], netlink: [] as Scrape[], procfs: [] as Scrape[], baseline: [] as Scrape[] };
  const cpuBefore = {
    ...Object.fromEntries(SOURCES.map((s) => [s, instances[s].cpuSeconds()])),
    baseline: baseline?.cpuSeconds() ?? 0,
  } as Record<Source | 'baseline', number>;
  for (let r = 0; r < R; r++) {
    const f = await floorRound(floorBinary, containers);
    floor.push(f.ms);
    floorSockets = f.sockets;
    const e = ebpfRead.round();
    ebpfReads.push(e.ms);
    ebpfReadSockets = e.sockets;
    for (const source of SOURCES) scrapes[source].push(await instances[source].scrape());
    if (baseline) scrapes.baseline.push(await baseline.scrape());
  }
  const cpuPerCollectionMs = {
    ...Object.fromEntries(SOURCES.map((s) => [s, ((instances[s].cpuSeconds() - cpuBefore[s]) / R) * 1000])),
    baseline: baseline ? ((baseline.cpuSeconds() - cpuBefore.baseline) / R) * 1000 : 0,
  } as Record<Source | 'baseline', number>;
  await instances.netlink.stop();
  await instances.procfs.stop();
  await baseline?.stop();
  const peakOfTimingInstance = auto.memoryKiB().peak;

  log(`measuring ${A} rounds of the ancestor (docker exec, sequential)`);
  const ancestor: number[] = [];
  for (let r = 0; r < A; r++) ancestor.push((await ancestorRound(containers)).ms);
  const ancestorSummary = A > 0 ? summarize(ancestor) : undefined;

  // Memory on its own: a fresh outpost scraped back to back with nothing else running (the
  // timing instance above shared the machine with the procfs instance and the ancestor).
  let memory: { rssAt100KiB: number; rssAtKKiB: number; peakKiB: number; collections: number } | undefined;
  if (K > 0) {
    log(`running a fresh outpost (ebpf) to ${K} collections for its memory`);
    await auto.stop();
    const alone = await OutpostProcess.start(ROOT, 'ebpf');
    try {
      let rssAt100 = 0;
      while (alone.collections < K) {
        await alone.scrape();
        if (alone.collections === 100) rssAt100 = alone.memoryKiB().rss;
      }
      const { rss, peak } = alone.memoryKiB();
      memory = { rssAt100KiB: rssAt100, rssAtKKiB: rss, peakKiB: peak, collections: K };
    } finally {
      await alone.stop();
    }
  }

  const last = scrapes.ebpf.at(-1)!;
  const floorMedian = summarize(floor).median;
  const medianOf = (list: Scrape[]) => summarize(list.map((s) => s.collectionMs)).median;
  const outpostMedian = medianOf(scrapes.ebpf);
  const outpostSummary = (list: Scrape[], cpu: number) => ({
    source: list[0]!.source,
    collectionMs: summarize(list.map((s) => s.collectionMs)),
    socketsStageMs: summarize(list.map((s) => s.stagesMs.sockets ?? 0)),
    scrapeWallMs: summarize(list.map((s) => s.wallMs)),
    cpuPerCollectionMs: cpu,
  });
  const result = {
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      kernel: release(),
      node: process.version,
      tcpEhashEntries: sysctl('net.ipv4.tcp_ehash_entries'),
      tcpChildEhashEntries: sysctl('net.ipv4.tcp_child_ehash_entries'),
    },
    params: { containers: N, connections: M, rounds: R, ancestorRounds: A, policy: values.policy ?? false },
    sockets: floorSockets,
    floor: { collectionMs: summarize(floor), perNamespaceMs: floorMedian / N },
    // Every socket the ebpf source knows on the host (not only the containers'), read from the kernel.
    ebpfRead: { ms: summarize(ebpfReads), sockets: ebpfReadSockets, overOneNamespaceDump: summarize(ebpfReads).median / (floorMedian / N) },
    outpost: {
      ...outpostSummary(scrapes.ebpf, cpuPerCollectionMs.ebpf),
      peakRssKiB: peakOfTimingInstance,
      metricsBytes: last.bytes,
      series: last.series,
      memory,
    },
    outpostNetlink: outpostSummary(scrapes.netlink, cpuPerCollectionMs.netlink),
    outpostProcfs: outpostSummary(scrapes.procfs, cpuPerCollectionMs.procfs),
    baseline: baseline ? { directory: values.baseline, ...outpostSummary(scrapes.baseline, cpuPerCollectionMs.baseline) } : undefined,
    ancestor: ancestorSummary ? { collectionMs: ancestorSummary } : undefined,
    // What reading the sockets costs per container and per socket: the sockets stage over N and over the sockets.
    perContainerMs: Object.fromEntries(SOURCES.map((s) => [s, summarize(scrapes[s].map((x) => x.stagesMs.sockets ?? 0)).median / N])),
    perSocketUs: Object.fromEntries(
      SOURCES.map((s) => [s, (summarize(scrapes[s].map((x) => x.stagesMs.sockets ?? 0)).median / floorSockets) * 1000]),
    ),
    ratios: {
      outpostOverFloor: outpostMedian / floorMedian,
      netlinkOverFloor: medianOf(scrapes.netlink) / floorMedian,
      ebpfOverNetlink: outpostMedian / medianOf(scrapes.netlink),
      ancestorOverOutpost: ancestorSummary ? ancestorSummary.median / outpostMedian : undefined,
      procfsOverFloor: medianOf(scrapes.procfs) / floorMedian,
      ...(baseline && {
        outpostOverBaseline: outpostMedian / medianOf(scrapes.baseline),
        outpostOverBaselineCpu: cpuPerCollectionMs.ebpf / cpuPerCollectionMs.baseline,
        outpostOverBaselineWall:
          summarize(scrapes.ebpf.map((s) => s.wallMs)).median / summarize(scrapes.baseline.map((s) => s.wallMs)).median,
      }),
    },
  };
  const out = values.out ?? join(ROOT, 'bench', 'results', `N${N}-M${M}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);

  const ms = (s: { median: number; p95: number }) => `${s.median.toFixed(1)} ms (p95 ${s.p95.toFixed(1)})`;
  console.log(`N=${N} M=${M}: ${floorSockets} sockets in ${N} namespaces`);
  console.log(
    `  floor (netlink dumps, sequential, C)  ${ms(result.floor.collectionMs)} = ${result.floor.perNamespaceMs.toFixed(3)} ms a namespace`,
  );
  console.log(
    `  ebpf kernel read (every namespace)    ${result.ebpfRead.ms.median.toFixed(3)} ms (p95 ${result.ebpfRead.ms.p95.toFixed(3)}), ${ebpfReadSockets} sockets: ×${result.ebpfRead.overOneNamespaceDump.toFixed(2)} one namespace's dump`,
  );
  for (const [source, summary] of [
    ['ebpf', result.outpost],
    ['netlink', result.outpostNetlink],
    ['procfs', result.outpostProcfs],
  ] as const) {
    console.log(
      `  outpost, ${summary.source.padEnd(7)} collection     ${ms(summary.collectionMs)}, CPU ${cpuPerCollectionMs[source].toFixed(1)} ms, sockets stage ${ms(summary.socketsStageMs)}` +
        ` = ${result.perContainerMs[source]!.toFixed(3)} ms a container, ${result.perSocketUs[source]!.toFixed(1)} µs a socket`,
    );
  }
  if (result.ancestor) console.log(`  ancestor (docker exec, sequential)    ${ms(result.ancestor.collectionMs)}`);
  if (result.baseline) {
    console.log(
      `  baseline (${values.baseline}) collection ${ms(result.baseline.collectionMs)}, CPU ${cpuPerCollectionMs.baseline.toFixed(1)} ms, scrape ${ms(result.baseline.scrapeWallMs)}`,
    );
    console.log(
      `  outpost/baseline: collection ×${result.ratios.outpostOverBaseline!.toFixed(3)}, CPU ×${result.ratios.outpostOverBaselineCpu!.toFixed(3)}, scrape wall ×${result.ratios.outpostOverBaselineWall!.toFixed(3)}`,
    );
  }
  console.log(
    `  ebpf/floor ×${result.ratios.outpostOverFloor.toFixed(2)}, netlink/floor ×${result.ratios.netlinkOverFloor.toFixed(2)}, ebpf/netlink ×${result.ratios.ebpfOverNetlink.toFixed(2)}, procfs/floor ×${result.ratios.procfsOverFloor.toFixed(2)}` +
      (result.ratios.ancestorOverOutpost ? `, ancestor/ebpf ×${result.ratios.ancestorOverOutpost.toFixed(0)}` : ''),
  );
  console.log(
    `  outpost (ebpf) peak RSS (timing run, beside the other instances) ${(result.outpost.peakRssKiB / 1024).toFixed(1)} MB, /metrics ${last.bytes} bytes, ${last.series} series`,
  );
  if (memory) {
    console.log(
      `  alone: RSS after 100 collections ${(memory.rssAt100KiB / 1024).toFixed(1)} MB, after ${K} ${(memory.rssAtKKiB / 1024).toFixed(1)} MB (×${(memory.rssAtKKiB / memory.rssAt100KiB).toFixed(3)}), peak ${(memory.peakKiB / 1024).toFixed(1)} MB`,
    );
  }
  console.log(`  written to ${out}`);
} finally {
  ebpfRead.close();
  for (const source of SOURCES) await instances[source].stop().catch(() => undefined);
  await baseline?.stop().catch(() => undefined);
  if (!values.keep) await removeScenario();
}
