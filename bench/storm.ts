/**
 * What the events cost in a storm: one client opens RATE unexpected connections a second to one
 * server for SECONDS (test/support/native/connstorm.c in the containers: connect, close at once)
 * while one outpost (ebpf source) reads the host and is scraped every INTERVAL seconds. The client's
 * label allows nothing, so every connection is unexpected: this build makes an event of each (the
 * ring, the log). The other build, "without events", is
 *   - with --baseline DIR: that checkout, built (npm ci && npm run build), from before events:
 *     it judges and counts the same connections unexpected, and makes no event;
 *   - else this build with a policy file that allows the link: nothing is unexpected.
 * The two take turns, one storm each, ROUNDS times in the order A B B A (A B B A …), so that neither
 * always comes first; one outpost runs at a time (on a machine of few CPUs two contend with each
 * other and with the storm), each storm from a fresh client container (no TIME_WAIT left from the
 * storm before). A scrape is compared with the other build's scrape at the same moment of its
 * storms (the TIME_WAIT sockets grow through a storm: a scrape's cost follows the moment).
 *
 *   npm run bench:storm -- [--rate 1000] [--seconds 30] [--interval 2] [--rounds 2] [--baseline DIR] [--out bench/results/storm.json]
 *
 * Needs root, a Docker Engine, cc and the test image (the integration tests build it).
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
import { parseExposition, select } from '../test/support/exposition.js';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    rate: { type: 'string' },
    seconds: { type: 'string' },
    interval: { type: 'string' },
    rounds: { type: 'string' },
    baseline: { type: 'string' },
    out: { type: 'string' },
  },
  strict: true,
});
const RATE = wholeNumberFlag('bench', 'rate', values.rate, 1000, 1);
const SECONDS = wholeNumberFlag('bench', 'seconds', values.seconds, 30, 1);
const INTERVAL_S = wholeNumberFlag('bench', 'interval', values.interval, 2, 1);
const ROUNDS = wholeNumberFlag('bench', 'rounds', values.rounds, 2, 1);
const OUT = values.out ?? 'bench/results/storm.json';
const BASELINE = values.baseline;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PREFIX = 'outpost-bench-storm';
// Apart from the main bench's 10.213.96.0/20 and the test suite's subnets; --internal: the
// storm stays between the bench's two containers.
const SUBNET = '10.213.120.0/24';
const SERVER = `${PREFIX}-server`;
const CLIENT = `${PREFIX}-client`;
const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function removeStorm(): Promise<void> {
  await docker('rm', '-f', SERVER, CLIENT).catch(() => '');
  await docker('network', 'rm', `${PREFIX}-net`).catch(() => '');
}

/** The kernel's count of connects made in the namespace of `pid` (nstat, absolute). */
async function activeOpens(pid: number): Promise<number> {
  const { stdout } = await run('nsenter', ['-t', String(pid), '-n', 'nstat', '-az', 'TcpActiveOpens']);
  return Number(/TcpActiveOpens\s+(\d+)/.exec(stdout)?.[1] ?? NaN);
}

/** The sum of an exposition's samples of one family whose labels include `match`. */
const sampleSum = (text: string, family: string, match: Record<string, string> = {}) =>
  select(parseExposition(text), family, match).reduce((sum, s) => sum + s.value, 0);

interface Storm {
  build: 'withEvents' | 'withoutEvents';
  opened: number;
  events: number;
  scrapes: Scrape[];
  /** TIME_WAIT sockets the client had at each scrape, as outpost counted them. */
  timeWait: number[];
  cpuS: number;
  peakRssKiB: number;
}
const work = await mkdtemp(join(tmpdir(), 'outpost-bench-storm-'));
let outpost: OutpostProcess | undefined;
try {
  await docker('image', 'inspect', BENCH_IMAGE).catch(() => {
    throw new Error(`the bench needs the test image ${BENCH_IMAGE}: run the integration tests once (npm test), which build it`);
  });
  await removeStorm();
  const connstorm = join(work, 'connstorm');
  await run('cc', ['-O2', '-static', '-o', connstorm, join(ROOT, 'test/support/native/connstorm.c')]);
  const net = `${PREFIX}-net`;
  await docker('network', 'create', '--internal', '--subnet', SUBNET, net);
  await docker('run', '-d', '--name', SERVER, '--network', net, BENCH_IMAGE, 'sleep', '100000');
  await docker('cp', connstorm, `${SERVER}:/bin/connstorm`);
  await docker('exec', '-d', SERVER, '/bin/connstorm', 'serve', '8080');
  const serverIp = await docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', SERVER);
  const policy = join(work, 'policy.yaml');
  await writeFile(
    policy,
    `rules:\n  - name: the storm's link\n    from: {container: ${CLIENT}}\n    to: {container: ${SERVER}}\n    ports: [8080]\n`,
  );

  /** One storm from a fresh client, read by one outpost of `build`. */
  async function storm(build: Storm['build']): Promise<Storm> {
    await docker('rm', '-f', CLIENT).catch(() => '');
    await docker(
      'run',
      '-d',
      '--name',
      CLIENT,
      '--network',
      net,
      '--label',
      'outpost.allow.outbound=nobody:1',
      BENCH_IMAGE,
      'sleep',
      '100000',
    );
    await docker('cp', connstorm, `${CLIENT}:/bin/connstorm`);
    const clientPid = Number(await docker('inspect', '-f', '{{.State.Pid}}', CLIENT));
    // Each connection leaves the client's end in TIME_WAIT for 60 s: 1,000 a second need more ports
    // than the default 28,232 (32768-60999); 64,512 allow 1,075 a second.
    await run('nsenter', ['-t', String(clientPid), '-n', 'sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65535']);
    outpost =
      build === 'withEvents'
        ? await OutpostProcess.start(ROOT, 'ebpf')
        : BASELINE
          ? await OutpostProcess.start(BASELINE, 'ebpf')
          : await OutpostProcess.start(ROOT, 'ebpf', [`--policy.file=${policy}`]);
    const o = outpost;
    // It sees the link, and judges it as it should (a connection before the storm).
    await docker('exec', CLIENT, '/bin/connstorm', 'connect', serverIp, '8080', '1', '1');
    const unexpected = sampleSum(await o.metricsText(), 'container_tcp_unexpected_connections_total');
    if ((unexpected === 0) !== (build === 'withoutEvents' && BASELINE === undefined)) {
      throw new Error(`the ${build} outpost judged the link ${unexpected === 0 ? 'allowed' : 'unexpected'}: not what it should`);
    }
    const eventsMade = async () => {
      if (build === 'withoutEvents') return 0;
      const answer = (await (await fetch(`${o.url}/events?limit=1`)).json()) as { kept: number; dropped: number };
      return answer.kept + answer.dropped;
    };
    const eventsBefore = await eventsMade();
    const opensBefore = await activeOpens(clientPid);
    const cpuBefore = o.cpuSeconds();
    const running = docker('exec', CLIENT, '/bin/connstorm', 'connect', serverIp, '8080', String(RATE), String(SECONDS));
    const scrapes: Scrape[] = [];
    const timeWait: number[] = [];
    const started = performance.now();
    for (let turn = 1; turn * INTERVAL_S <= SECONDS + INTERVAL_S; turn++) {
      await sleep(Math.max(0, started + turn * INTERVAL_S * 1000 - performance.now()));
      const scrape = await o.scrape();
      scrapes.push(scrape);
      timeWait.push(sampleSum(o.lastText, 'container_tcp_sockets', { container: CLIENT, state: 'time_wait' }));
    }
    await running;
    const result: Storm = {
      build,
      opened: (await activeOpens(clientPid)) - opensBefore,
      events: (await eventsMade()) - eventsBefore,
      scrapes,
      timeWait,
      cpuS: o.cpuSeconds() - cpuBefore,
      peakRssKiB: o.memoryKiB().peak,
    };
    await o.stop();
    outpost = undefined;
    log(
      `${build}: ${result.opened} opened, ${result.events} events, scrapes ${scrapes.map((x) => Math.round(x.wallMs)).join(' ')} ms, TIME_WAIT at the last ${timeWait.at(-1)}`,
    );
    return result;
  }

  log(`${ROUNDS} rounds of 2 storms: ${RATE} connections a second for ${SECONDS} s, scraped every ${INTERVAL_S} s`);
  const storms: Storm[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order: Storm['build'][] = round % 2 === 0 ? ['withEvents', 'withoutEvents'] : ['withoutEvents', 'withEvents'];
    for (const build of order) storms.push(await storm(build));
  }

  const of = (build: Storm['build']) => storms.filter((x) => x.build === build);
  const wall = (build: Storm['build']) => of(build).flatMap((x) => x.scrapes.map((s) => s.wallMs));
  /** Per moment of the storm (the k-th scrape), the median over the build's storms. */
  const atMoment = (build: Storm['build']) => {
    const runs = of(build);
    const moments = Math.min(...runs.map((x) => x.scrapes.length));
    return Array.from({ length: moments }, (_, k) => summarize(runs.map((x) => x.scrapes[k]!.wallMs)).median);
  };
  const stagesOf = (build: Storm['build']) => {
    const all = of(build).flatMap((x) => x.scrapes);
    return Object.fromEntries(
      Object.keys(all[0]?.stagesMs ?? {}).map((stage) => [stage, summarize(all.map((x) => x.stagesMs[stage] ?? 0)).median]),
    );
  };
  const sides = (['withEvents', 'withoutEvents'] as const).map((build) => ({
    build,
    scrapeWallMs: summarize(wall(build)),
    maxScrapeWallMs: Math.max(...wall(build)),
    atMomentMs: atMoment(build),
    stagesMedianMs: stagesOf(build),
    eventsStageMs: summarize(of(build).flatMap((x) => x.scrapes.map((s) => s.stagesMs.events ?? 0))),
    cpuS: summarize(of(build).map((x) => x.cpuS)).median,
    peakRssKiB: Math.max(...of(build).map((x) => x.peakRssKiB)),
  }));
  const [withEvents, withoutEvents] = sides as [(typeof sides)[0], (typeof sides)[0]];
  const momentRatios = withEvents.atMomentMs.map((ms, k) => ms / withoutEvents.atMomentMs[k]!);
  const result = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, kernel: release() },
    params: {
      rate: RATE,
      seconds: SECONDS,
      intervalS: INTERVAL_S,
      rounds: ROUNDS,
      withoutEvents: BASELINE ?? 'this build, the link allowed',
    },
    storms: storms.map((x) => ({
      build: x.build,
      opened: x.opened,
      events: x.events,
      scrapesWallMs: x.scrapes.map((s) => Math.round(s.wallMs)),
      eventsStageMs: x.scrapes.map((s) => Math.round(s.stagesMs.events ?? 0)),
      timeWait: x.timeWait,
      cpuS: x.cpuS,
      peakRssKiB: x.peakRssKiB,
    })),
    withEvents,
    withoutEvents,
    ratios: {
      scrapeWallMedian: withEvents.scrapeWallMs.median / withoutEvents.scrapeWallMs.median,
      scrapeWallMax: withEvents.maxScrapeWallMs / withoutEvents.maxScrapeWallMs,
      /** The greatest of the moment-by-moment ratios (each the median of its build's storms). */
      atMomentMax: Math.max(...momentRatios),
      atMomentMedian: summarize(momentRatios).median,
      cpu: withEvents.cpuS / withoutEvents.cpuS,
      peakRss: withEvents.peakRssKiB / withoutEvents.peakRssKiB,
    },
  };
  const f = (n: number) => n.toFixed(1);
  const r = result.ratios;
  console.log(
    [
      `storms: ${storms.map((x) => `${x.build === 'withEvents' ? 'with' : 'without'} ${x.opened} opened/${x.events} events`).join(', ')}`,
      ...sides.map(
        (x) =>
          `  ${x.build === 'withEvents' ? 'with events   ' : 'without events'} scrape ${f(x.scrapeWallMs.median)} ms (p95 ${f(x.scrapeWallMs.p95)}, max ${f(x.maxScrapeWallMs)}), events stage ${f(x.eventsStageMs.median)} ms (p95 ${f(x.eventsStageMs.p95)}), CPU a storm ${f(x.cpuS)} s, peak RSS ${f(x.peakRssKiB / 1024)} MB`,
      ),
      `  stages (median ms, with / without): ${Object.keys(withEvents.stagesMedianMs)
        .map((stage) => `${stage} ${f(withEvents.stagesMedianMs[stage]!)} / ${f(withoutEvents.stagesMedianMs[stage] ?? 0)}`)
        .join(', ')}`,
      `  at each moment (ms, with / without): ${withEvents.atMomentMs.map((ms, k) => `${Math.round(ms)}/${Math.round(withoutEvents.atMomentMs[k]!)}`).join(' ')}`,
      `  with/without: scrape median ×${r.scrapeWallMedian.toFixed(3)}, max ×${r.scrapeWallMax.toFixed(3)}, moment by moment median ×${r.atMomentMedian.toFixed(3)} and max ×${r.atMomentMax.toFixed(3)}, CPU ×${r.cpu.toFixed(3)}, peak RSS ×${r.peakRss.toFixed(3)}`,
      `  written to ${OUT}`,
    ].join('\n'),
  );
  writeFileSync(OUT, JSON.stringify(result, null, 2) + '\n');
} finally {
  await outpost?.stop();
  await removeStorm();
  await rm(work, { recursive: true, force: true });
}
