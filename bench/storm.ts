/**
 * What the events cost in a storm: one client opens RATE unexpected connections a second to one
 * server for SECONDS (test/support/native/connstorm.c in the containers: connect, close at once),
 * while two outposts read the same host, ebpf source, scraped in turn. The client's label allows
 * nothing, so every connection is unexpected: this build makes an event of each (the ring, the log).
 * The other, "without events", is
 *   - with --baseline DIR: that checkout, built (npm ci && npm run build), from before events:
 *     it judges and counts the same connections unexpected, and makes no event;
 *   - else this build with a policy file that allows the link: nothing is unexpected.
 * Same storm, same moments: their ratio is what making the events costs.
 *
 *   npm run bench:storm -- [--rate 1000] [--seconds 30] [--interval 5] [--baseline DIR] [--out bench/results/storm.json]
 *
 * --interval: seconds between two scrapes of one outpost (the other is scraped half-way). Needs
 * root, a Docker Engine, cc and the test image (the integration tests build it).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { promisify } from 'node:util';
import { OutpostProcess, summarize, wholeNumberFlag, type Scrape } from './measure.js';
import { BENCH_IMAGE, docker } from './scenario.js';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    rate: { type: 'string' },
    seconds: { type: 'string' },
    interval: { type: 'string' },
    baseline: { type: 'string' },
    out: { type: 'string' },
  },
  strict: true,
});
const RATE = wholeNumberFlag('bench', 'rate', values.rate, 1000, 1);
const SECONDS = wholeNumberFlag('bench', 'seconds', values.seconds, 30, 1);
const INTERVAL_S = wholeNumberFlag('bench', 'interval', values.interval, 5, 1);
const OUT = values.out ?? 'bench/results/storm.json';
const BASELINE = values.baseline;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PREFIX = 'outpost-bench-storm';
// Apart from the main bench's 10.213.96.0/20 and the test suite's subnets; --internal: the
// storm stays between the bench's two containers.
const SUBNET = '10.213.120.0/24';
const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function removeStorm(): Promise<void> {
  await docker('rm', '-f', `${PREFIX}-server`, `${PREFIX}-client`).catch(() => '');
  await docker('network', 'rm', `${PREFIX}-net`).catch(() => '');
}

/** The kernel's count of connects made in the namespace of `pid` (nstat, absolute). */
async function activeOpens(pid: number): Promise<number> {
  const { stdout } = await run('nsenter', ['-t', String(pid), '-n', 'nstat', '-az', 'TcpActiveOpens']);
  return Number(/TcpActiveOpens\s+(\d+)/.exec(stdout)?.[1] ?? NaN);
}

const work = await mkdtemp(join(tmpdir(), 'outpost-bench-storm-'));
const outposts: OutpostProcess[] = [];
try {
  await docker('image', 'inspect', BENCH_IMAGE).catch(() => {
    throw new Error(`the bench needs the test image ${BENCH_IMAGE}: run the integration tests once (npm test), which build it`);
  });
  await removeStorm();
  const connstorm = join(work, 'connstorm');
  await run('cc', ['-O2', '-static', '-o', connstorm, join(ROOT, 'test/support/native/connstorm.c')]);
  const net = `${PREFIX}-net`;
  await docker('network', 'create', '--internal', '--subnet', SUBNET, net);
  const server = `${PREFIX}-server`;
  const client = `${PREFIX}-client`;
  await docker('run', '-d', '--name', server, '--network', net, BENCH_IMAGE, 'sleep', '100000');
  await docker(
    'run',
    '-d',
    '--name',
    client,
    '--network',
    net,
    '--label',
    'outpost.allow.outbound=nobody:1',
    BENCH_IMAGE,
    'sleep',
    '100000',
  );
  for (const c of [server, client]) await docker('cp', connstorm, `${c}:/bin/connstorm`);
  await docker('exec', '-d', server, '/bin/connstorm', 'serve', '8080');
  const serverIp = await docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', server);
  const clientPid = Number(await docker('inspect', '-f', '{{.State.Pid}}', client));
  // Each connection leaves the client's end in TIME_WAIT for 60 s: 1,000 a second need more ports
  // than the default 28,232 (32768-60999); 64,512 allow 1,075 a second.
  await run('nsenter', ['-t', String(clientPid), '-n', 'sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65535']);
  const policy = join(work, 'policy.yaml');
  await writeFile(
    policy,
    `rules:\n  - name: the storm's link\n    from: {container: ${client}}\n    to: {container: ${server}}\n    ports: [8080]\n`,
  );

  const withEvents = await OutpostProcess.start(ROOT, 'ebpf');
  const withoutEvents = BASELINE
    ? await OutpostProcess.start(BASELINE, 'ebpf')
    : await OutpostProcess.start(ROOT, 'ebpf', [`--policy.file=${policy}`]);
  outposts.push(withEvents, withoutEvents);
  // Both see the link; one judges it unexpected, the other allowed (a connection before the storm).
  await docker('exec', client, '/bin/connstorm', 'connect', serverIp, '8080', '1', '1');
  const unexpected = async (o: OutpostProcess) =>
    [...(await o.metricsText()).matchAll(/^container_tcp_unexpected_connections_total\{container="[^"]+"[^}]*\} (\S+)$/gm)].reduce(
      (sum, m) => sum + Number(m[1]),
      0,
    );
  if ((await unexpected(withEvents)) === 0 || ((await unexpected(withoutEvents)) === 0) !== (BASELINE === undefined)) {
    throw new Error(
      `the outposts do not judge the link as they should: unexpected for this build, ${BASELINE ? 'and' : 'allowed'} for the other`,
    );
  }
  const eventsMade = async () => {
    const answer = (await (await fetch(`${withEvents.url}/events?limit=1`)).json()) as { kept: number; dropped: number };
    return answer.kept + answer.dropped;
  };
  const eventsBefore = await eventsMade();
  const opensBefore = await activeOpens(clientPid);
  const cpuBefore = outposts.map((o) => o.cpuSeconds());

  log(`storm: ${RATE} connections a second for ${SECONDS} s, each outpost scraped every ${INTERVAL_S} s, in turn`);
  const storm = docker('exec', client, '/bin/connstorm', 'connect', serverIp, '8080', String(RATE), String(SECONDS));
  const scrapes: [Scrape[], Scrape[]] = [[], []];
  const started = performance.now();
  for (let turn = 0; performance.now() - started < (SECONDS + INTERVAL_S) * 1000; turn++) {
    await sleep(Math.max(0, started + ((turn + 1) * INTERVAL_S * 1000) / 2 - performance.now()));
    scrapes[turn % 2]!.push(await outposts[turn % 2]!.scrape());
  }
  const established = Number(await storm);
  const opened = (await activeOpens(clientPid)) - opensBefore;
  const events = (await eventsMade()) - eventsBefore;
  const cpu = outposts.map((o, i) => o.cpuSeconds() - cpuBefore[i]!);
  const memory = outposts.map((o) => o.memoryKiB());

  const wall = scrapes.map((s) => summarize(s.map((x) => x.wallMs)));
  const collection = scrapes.map((s) => summarize(s.map((x) => x.collectionMs)));
  const eventsStage = summarize(scrapes[0].map((x) => x.stagesMs.events ?? 0));
  const max = scrapes.map((s) => Math.max(...s.map((x) => x.wallMs)));
  const stages = scrapes.map((s) =>
    Object.fromEntries(Object.keys(s[0]?.stagesMs ?? {}).map((stage) => [stage, summarize(s.map((x) => x.stagesMs[stage] ?? 0)).median])),
  );
  const result = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, kernel: release() },
    params: { rate: RATE, seconds: SECONDS, intervalS: INTERVAL_S, withoutEvents: BASELINE ?? 'this build, the link allowed' },
    storm: { established, opened, perSecond: opened / SECONDS, events },
    withEvents: {
      scrapeWallMs: wall[0],
      maxScrapeWallMs: max[0],
      collectionMs: collection[0],
      eventsStageMs: eventsStage,
      stagesMedianMs: stages[0],
      cpuS: cpu[0],
      memoryKiB: memory[0],
    },
    withoutEvents: {
      scrapeWallMs: wall[1],
      maxScrapeWallMs: max[1],
      collectionMs: collection[1],
      stagesMedianMs: stages[1],
      cpuS: cpu[1],
      memoryKiB: memory[1],
    },
    ratios: {
      scrapeWallMedian: wall[0]!.median / wall[1]!.median,
      scrapeWallMax: max[0]! / max[1]!,
      collectionMedian: collection[0]!.median / collection[1]!.median,
      cpu: cpu[0]! / cpu[1]!,
      peakRss: memory[0]!.peak / memory[1]!.peak,
    },
  };
  const f = (n: number) => n.toFixed(1);
  console.log(
    [
      `storm: ${opened} connections opened (${f(opened / SECONDS)} a second), ${established} established; ${events} events made`,
      `  with events    scrape ${f(wall[0]!.median)} ms (p95 ${f(wall[0]!.p95)}, max ${f(max[0]!)}), collection ${f(collection[0]!.median)} ms, events stage ${f(eventsStage.median)} ms (p95 ${f(eventsStage.p95)}), CPU ${f(cpu[0]!)} s, peak RSS ${f(memory[0]!.peak / 1024)} MB`,
      `  without events scrape ${f(wall[1]!.median)} ms (p95 ${f(wall[1]!.p95)}, max ${f(max[1]!)}), collection ${f(collection[1]!.median)} ms, CPU ${f(cpu[1]!)} s, peak RSS ${f(memory[1]!.peak / 1024)} MB`,
      `  stages (median ms, with / without): ${Object.keys(stages[0] ?? {})
        .map((stage) => `${stage} ${f(stages[0]![stage]!)} / ${f(stages[1]![stage] ?? 0)}`)
        .join(', ')}`,
      `  with/without: scrape median ×${result.ratios.scrapeWallMedian.toFixed(3)}, max ×${result.ratios.scrapeWallMax.toFixed(3)}, collection ×${result.ratios.collectionMedian.toFixed(3)}, CPU ×${result.ratios.cpu.toFixed(3)}, peak RSS ×${result.ratios.peakRss.toFixed(3)}`,
      `  written to ${OUT}`,
    ].join('\n'),
  );
  writeFileSync(OUT, JSON.stringify(result, null, 2) + '\n');
} finally {
  for (const o of outposts) await o.stop();
  await removeStorm();
  await rm(work, { recursive: true, force: true });
}
