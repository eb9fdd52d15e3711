/**
 * What reading DNS answers costs outpost (src/names/), on real answers: a network namespace of
 * the bench's own runs dnsmasq on its loopback, and a client in it asks dnsmasq in batches; after
 * each batch the names stage reads what the namespace received, as a collection does, timed by
 * this process's CPU (user + system: the drain's recvmsg is system). `--reader` picks the reader:
 * `packet_socket` (native/dns_answers.c) or `ebpf` (the ebpf source's program dns_answers, whose
 * thread takes the packets as they come: its CPU is counted over each batch, asking included).
 *
 *   npm run bench:dns -- [--reader packet_socket|ebpf] [--answers 20000] [--batch 500] [--out bench/results/dns-answers.json]
 *
 * It also measures the names stage on a namespace that received nothing (what every container
 * costs each collection), and how many answers one namespace's queue holds between two reads
 * (past that they are dropped and counted). With ebpf, the program's own time in the kernel per
 * packet (kernel.bpf_stats_enabled, for the bench's run): a DNS answer, and a datagram of another
 * port, which is what every packet the host receives costs. Needs root, dnsmasq and the built addons.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { createLogger } from '../src/base/log.js';
import type { Container } from '../src/inventory/container.js';
import { loadDnsAnswersAddon } from '../src/names/dnsAnswersAddon.js';
import { DnsAnswerSockets, type DnsAnswerReader } from '../src/names/dnsAnswerSockets.js';
import { EbpfDnsAnswers } from '../src/names/ebpfDnsAnswers.js';
import { loadBpfAddon } from '../src/sockets/bpfAddon.js';
import { PeerNames } from '../src/names/peerNames.js';
import { ResolvedNames } from '../src/names/resolvedNames.js';
import type { NetNamespace } from '../src/namespaces/netNamespaces.js';
import { summarize, wholeNumberFlag } from './measure.js';

const { values } = parseArgs({
  options: { answers: { type: 'string' }, batch: { type: 'string' }, reader: { type: 'string' }, out: { type: 'string' } },
  strict: true,
});
const ANSWERS = wholeNumberFlag('bench', 'answers', values.answers, 20_000);
const BATCH = wholeNumberFlag('bench', 'batch', values.batch, 500);
const READER = values.reader ?? 'packet_socket';
if (READER !== 'packet_socket' && READER !== 'ebpf') {
  process.stderr.write(`bench: --reader expects packet_socket or ebpf, got "${READER}"\n`);
  process.exit(2);
}
const NAMES = 50;
const NS = 'outpost-bench-dns';
const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'ignore' });

/** A client in the namespace: on each line "N" from its stdin, N queries (A, NAMES names in turn), then "done" once all were answered. */
const CLIENT = `
const socket = require('dgram').createSocket('udp4');
let left = 0, next = 0;
const query = () => {
  const label = Buffer.from('n' + (next++ % ${NAMES}));
  return Buffer.concat([Buffer.from([next & 255, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, label.length]), label,
    Buffer.from([5]), Buffer.from('bench'), Buffer.from([4]), Buffer.from('test'), Buffer.from([0, 0, 1, 0, 1])]);
};
// One query at a time: each sent when the last is answered, so none is lost on the way.
socket.on('message', () => {
  if (--left === 0) process.stdout.write('done\\n');
  else socket.send(query(), 53, '127.0.0.1');
});
require('readline').createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.startsWith('other ')) {
    // Datagrams of another port, to a port no one listens on: not DNS, never copied.
    const other = require('dgram').createSocket('udp4');
    other.bind(9999, '127.0.0.1', () => {
      let n = Number(line.slice(6));
      const send = () => (n-- > 0 ? other.send(Buffer.alloc(64), 9998, '127.0.0.1', send) : (other.close(), process.stdout.write('done\\n')));
      send();
    });
    return;
  }
  left = Number(line);
  socket.send(query(), 53, '127.0.0.1');
});
`;

try {
  ip('netns', 'del', NS);
} catch {
  // none left
}
ip('netns', 'add', NS);
ip('-n', NS, 'link', 'set', 'lo', 'up');
const records = Array.from({ length: NAMES }, (_, i) => `--host-record=n${i}.bench.test,198.51.100.${i + 1}`);
const dnsmasq = spawn(
  'ip',
  [
    'netns',
    'exec',
    NS,
    'dnsmasq',
    '--no-daemon',
    '--no-resolv',
    '--no-hosts',
    '--listen-address=127.0.0.1',
    '--bind-interfaces',
    '--local-ttl=300',
    '--dns-forward-max=10000',
    '--cache-size=0',
    ...records,
  ],
  { stdio: 'ignore' },
);
const client = spawn('ip', ['netns', 'exec', NS, process.execPath, '-e', CLIENT], { stdio: ['pipe', 'pipe', 'inherit'] });
const lines = createInterface({ input: client.stdout });
const nextLine = () => new Promise<string>((resolve) => lines.once('line', resolve));
const ask = async (n: number) => {
  client.stdin.write(`${n}\n`);
  await nextLine();
};

try {
  await new Promise((r) => setTimeout(r, 500));
  // From build/bench/, the addons are two floors up (nativePath counts from src/).
  const native = (path: string) => fileURLToPath(new URL(`../../native/${path}`, import.meta.url));
  const owner = { id: 'bench', name: 'bench', pid: client.pid! } as unknown as Container;
  const inode = Number(execFileSync('stat', ['-L', '-c', '%i', `/run/netns/${NS}`], { encoding: 'utf8' }).trim());
  const namespace: NetNamespace = { id: `net:[${inode}]`, host: false, containers: [owner] };
  const reader = READER === 'ebpf' ? ebpfReader(native) : packetSocketReader(native);
  const names = new ResolvedNames({ reader: reader.reader, store: new PeerNames({ maxNamesPerContainer: 100, graceMs: 60_000 }) });
  names.read([namespace]); // opens the socket
  await ask(BATCH); // warm: dnsmasq, the client, the JIT
  names.read([namespace]);

  const cpuMs = () => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  };
  const perThousand: number[] = [];
  const wallPerThousand: number[] = [];
  const batchPerThousand: number[] = [];
  const before = names.counts();
  const programBefore = reader.programTime();
  for (let asked = 0; asked < ANSWERS; asked += BATCH) {
    const batch = cpuMs();
    await ask(BATCH);
    const cpu = cpuMs();
    const wall = performance.now();
    names.read([namespace]);
    perThousand.push(((cpuMs() - cpu) * 1000) / BATCH);
    wallPerThousand.push(((performance.now() - wall) * 1000) / BATCH);
    batchPerThousand.push(((cpuMs() - batch) * 1000) / BATCH);
  }
  const programDns = reader.programTime();
  const after = names.counts();
  const read = after.answers - before.answers;
  log(`read ${read} answers of ${ANSWERS} asked, ${after.droppedPackets} dropped`);

  // A namespace that received nothing: the stage's cost per container and collection.
  const empty: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const start = performance.now();
    names.read([namespace]);
    empty.push((performance.now() - start) * 1000);
  }

  // How many answers wait in one namespace's queue between two reads: ask many, read once.
  const flood = 20_000;
  const droppedBefore = names.counts().droppedPackets;
  const answersBefore = names.counts().answers;
  for (let i = 0; i < flood; i += 1000) await ask(1000);
  names.read([namespace]);
  const held = names.counts().answers - answersBefore;
  const dropped = names.counts().droppedPackets - droppedBefore;

  // Datagrams of another port: what the program costs every other packet the host receives.
  const programOtherBefore = reader.programTime();
  client.stdin.write('other 100000\n');
  await nextLine();
  const programOther = reader.programTime();
  names.close();
  reader.close();
  const perRun = (a?: ProgramTime, b?: ProgramTime) => (a && b && b.runs > a.runs ? (b.ns - a.ns) / (b.runs - a.runs) : undefined);

  const result = {
    date: new Date().toISOString(),
    kernel: release(),
    cpu: cpus()[0]?.model,
    node: process.version,
    rmemMax: Number(execFileSync('sysctl', ['-n', 'net.core.rmem_max'], { encoding: 'utf8' }).trim()),
    reader: READER,
    answersAsked: ANSWERS,
    answersRead: read,
    batch: BATCH,
    cpuMsPerThousandAnswers: summarize(perThousand),
    wallMsPerThousandAnswers: summarize(wallPerThousand),
    cpuMsPerThousandAnswersWholeBatch: summarize(batchPerThousand),
    // Each answer is two packets received in the namespace: the query (dnsmasq's) and the answer.
    programNsPerPacketDns: perRun(programBefore, programDns),
    programNsPerPacketOther: perRun(programOtherBefore, programOther),
    emptyReadMicroseconds: summarize(empty),
    queue: { asked: flood, held, dropped },
  };
  log(
    `${READER}: CPU per 1,000 answers: median ${result.cpuMsPerThousandAnswers.median.toFixed(2)} ms read, ${result.cpuMsPerThousandAnswersWholeBatch.median.toFixed(2)} ms over the batch; a namespace with none: ${result.emptyReadMicroseconds.median.toFixed(1)} µs; the queue held ${held} of ${flood} (${dropped} dropped)` +
      (result.programNsPerPacketOther !== undefined
        ? `; the program: ${result.programNsPerPacketDns?.toFixed(0)} ns a packet of the DNS exchange, ${result.programNsPerPacketOther.toFixed(0)} ns another`
        : ''),
  );
  if (values.out) writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} finally {
  client.kill();
  dnsmasq.kill();
  try {
    ip('netns', 'del', NS);
  } catch {
    // gone
  }
}

interface ProgramTime {
  ns: number;
  runs: number;
}

interface BenchReader {
  reader: DnsAnswerReader;
  /** The program's time in the kernel so far (bpf_stats), ebpf only. */
  programTime(): ProgramTime | undefined;
  close(): void;
}

function packetSocketReader(native: (path: string) => string): BenchReader {
  const addon = loadDnsAnswersAddon(native('build/Release/dns_answers.node'));
  if (addon instanceof Error) throw addon;
  const reader = new DnsAnswerSockets({ addon, procfsPath: '/proc', log: createLogger('warn', 'logfmt') });
  return { reader, programTime: () => undefined, close: () => undefined };
}

/** The ebpf source's object, loaded as outpost loads it; its dns_answers program timed by the kernel. */
function ebpfReader(native: (path: string) => string): BenchReader {
  const addon = loadBpfAddon(native('build/Release/bpf_source.node'));
  if (addon instanceof Error) throw addon;
  const object = existsSync(native('build/outpost.bpf.o')) ? native('build/outpost.bpf.o') : native('bpf/outpost.bpf.o');
  const statsBefore = execFileSync('sysctl', ['-n', 'kernel.bpf_stats_enabled'], { encoding: 'utf8' }).trim();
  execFileSync('sysctl', ['-q', '-w', 'kernel.bpf_stats_enabled=1']);
  const handle = addon.load(object);
  if (!addon.programs(handle).some((p) => p.name === 'dns_answers' && p.loaded)) throw new Error('the kernel left out dns_answers');
  const reader = new EbpfDnsAnswers({
    drain: () => addon.drainDns(handle),
    lost: () => {
      const { dnsLost, dnsDropped } = addon.counters(handle);
      return dnsLost + dnsDropped;
    },
  });
  return {
    reader,
    programTime() {
      const shown = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show', 'name', 'dns_answers'], { encoding: 'utf8' })) as
        { run_time_ns?: number; run_cnt?: number }[] | { run_time_ns?: number; run_cnt?: number };
      // Ours is the newest of that name (another outpost may run beside the bench).
      const mine = Array.isArray(shown) ? shown[shown.length - 1] : shown;
      return { ns: mine?.run_time_ns ?? 0, runs: mine?.run_cnt ?? 0 };
    },
    close() {
      addon.close(handle);
      execFileSync('sysctl', ['-q', '-w', `kernel.bpf_stats_enabled=${statsBefore}`]);
    },
  };
}
