/**
 * What reading DNS answers costs outpost (src/names/, native/dns_answers.c), on real answers:
 * a network namespace of the bench's own runs dnsmasq on its loopback, and a client in it asks
 * dnsmasq in batches; after each batch the names stage reads what the namespace received, as a
 * collection does, timed by this process's CPU (user + system: the drain's recvmsg is system).
 *
 *   npm run bench:dns -- [--answers 20000] [--batch 500] [--out bench/results/dns-answers.json]
 *
 * It also measures the names stage on a namespace that received nothing (what every container
 * costs each collection), and how many answers one namespace's queue holds between two reads
 * (past that they are dropped and counted). Needs root, dnsmasq and the built addon.
 */
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { createLogger } from '../src/base/log.js';
import type { Container } from '../src/inventory/container.js';
import { loadDnsAnswersAddon } from '../src/names/dnsAnswersAddon.js';
import { DnsAnswerSockets } from '../src/names/dnsAnswerSockets.js';
import { PeerNames } from '../src/names/peerNames.js';
import { ResolvedNames } from '../src/names/resolvedNames.js';
import type { NetNamespace } from '../src/namespaces/netNamespaces.js';
import { summarize, wholeNumberFlag } from './measure.js';

const { values } = parseArgs({
  options: { answers: { type: 'string' }, batch: { type: 'string' }, out: { type: 'string' } },
  strict: true,
});
const ANSWERS = wholeNumberFlag('bench', 'answers', values.answers, 20_000);
const BATCH = wholeNumberFlag('bench', 'batch', values.batch, 500);
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
  // From build/bench/, the addon is two floors up (nativePath counts from src/).
  const addon = loadDnsAnswersAddon(fileURLToPath(new URL('../../native/build/Release/dns_answers.node', import.meta.url)));
  if (addon instanceof Error) throw addon;
  const owner = { id: 'bench', name: 'bench', pid: client.pid! } as unknown as Container;
  const namespace: NetNamespace = { id: 'net:[bench]', host: false, containers: [owner] };
  const logger = createLogger('warn', 'logfmt');
  const sockets = new DnsAnswerSockets({ addon, procfsPath: '/proc', log: logger });
  const names = new ResolvedNames({ sockets, store: new PeerNames({ maxNamesPerContainer: 100, graceMs: 60_000 }) });
  names.read([namespace]); // opens the socket
  await ask(BATCH); // warm: dnsmasq, the client, the JIT
  names.read([namespace]);

  const cpuMs = () => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  };
  const perThousand: number[] = [];
  const wallPerThousand: number[] = [];
  const before = names.counts();
  for (let asked = 0; asked < ANSWERS; asked += BATCH) {
    await ask(BATCH);
    const cpu = cpuMs();
    const wall = performance.now();
    names.read([namespace]);
    perThousand.push(((cpuMs() - cpu) * 1000) / BATCH);
    wallPerThousand.push(((performance.now() - wall) * 1000) / BATCH);
  }
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
  names.close();

  const result = {
    date: new Date().toISOString(),
    kernel: release(),
    cpu: cpus()[0]?.model,
    node: process.version,
    rmemMax: Number(execFileSync('sysctl', ['-n', 'net.core.rmem_max'], { encoding: 'utf8' }).trim()),
    answersAsked: ANSWERS,
    answersRead: read,
    batch: BATCH,
    cpuMsPerThousandAnswers: summarize(perThousand),
    wallMsPerThousandAnswers: summarize(wallPerThousand),
    emptyReadMicroseconds: summarize(empty),
    queue: { asked: flood, held, dropped },
  };
  log(
    `CPU per 1,000 answers: median ${result.cpuMsPerThousandAnswers.median.toFixed(2)} ms; a namespace with none: ${result.emptyReadMicroseconds.median.toFixed(1)} µs; the queue held ${held} of ${flood} (${dropped} dropped)`,
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
