import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBpfAddon, defaultBpfObjectPath, type BpfAddon, type BpfHandle } from '../../src/sockets/bpfAddon.js';
import { decodeBpfRecords, TCP_STATE_CODE } from '../../src/sockets/bpfRecords.js';
import { EbpfSocketSource } from '../../src/sockets/ebpfSource.js';
import type { NamespaceSockets } from '../../src/sockets/socketSource.js';
import type { TcpSocket } from '../../src/sockets/tcpSocket.js';
import { EVERY_EBPF_CAPABILITY } from '../support/ebpfCapabilities.js';
import { NamespacePair } from '../support/netns.js';
import { receivedPackets } from '../../src/names/dnsAnswersAddon.js';
import { netNamespaceInode } from '../../src/sockets/ebpfSource.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConnstorm } from '../support/connstorm.js';
import type { SsSocket } from '../support/ssOutput.js';

/**
 * The ebpf source on the running kernel, with no Docker Engine: what the kernel matrix
 * (test/kernels/) runs in a virtual machine per kernel, and `npm test` runs on this machine's.
 * Two namespaces of the test's own (a veth pair between them), servers that end connections in
 * each way the kernel ends one, and `ss` in each namespace as the oracle.
 */
const TIMES = 12;
/** DNS answers dnsmasq sent, captured with their IP and UDP headers (test/unit/names/fixtures). */
const answers = JSON.parse(readFileSync(new URL('../unit/names/fixtures/answers.json', import.meta.url), 'utf8')) as { hex: string }[];
const SERVERS = new URL('./servers.mjs', import.meta.url).pathname;
let pair: NamespacePair;
let source: EbpfSocketSource;
let addon: BpfAddon;
let handle: BpfHandle;
/** A listener stopped (SIGSTOP, its process group) before the load, so that its connection waits in its accept queue. */
const QUEUED_PORT = 9404;
/** The storm test's server. */
const STORM_PORT = 9405;
let stoppedListener: number;

const key = (s: { state: string; localAddress: string; localPort: number; remoteAddress: string; remotePort: number; inode?: number }) =>
  `${s.state} ${s.localAddress}:${s.localPort} ${s.remoteAddress}:${s.remotePort} ino=${s.inode ?? 0}`;

async function readNamespaces(): Promise<{
  server: Required<Pick<NamespaceSockets, 'sockets'>>;
  client: NamespaceSockets;
  passed: TcpSocket[];
  failed: TcpSocket[];
}> {
  const namespaces = [pair.server, pair.client].map((ns) => ({ id: pair.id(ns), host: false, containers: [] }));
  const result = await source.read(namespaces);
  expect(result.failed).toEqual([]);
  const clientId = pair.id(pair.client);
  const of = (reads: NamespaceSockets[] | undefined) => (reads ?? []).filter((r) => r.namespace.id === clientId).flatMap((r) => r.sockets);
  return {
    server: result.read.find((r) => r.namespace.id === pair.id(pair.server))!,
    client: result.read.find((r) => r.namespace.id === clientId)!,
    passed: of(result.passed),
    failed: of(result.failedConnects),
  };
}

/** Runs `connect` (a busybox nc command line) TIMES in the client namespace, all between two reads. */
async function between(connect: string): Promise<Awaited<ReturnType<typeof readNamespaces>>> {
  await readNamespaces();
  await pair.run(pair.client, [
    'sh',
    '-c',
    `i=0; while [ $i -lt ${TIMES} ]; do ${connect} </dev/null >/dev/null 2>&1; i=$((i+1)); done; true`,
  ]);
  return readNamespaces();
}

async function waitFor(what: string, probe: () => Promise<boolean>): Promise<void> {
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) if (await probe()) return;
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(async () => {
  pair = await NamespacePair.create('outpost-k');
  // Listening before the source loads, as at outpost's start: the seeding walk must find them.
  await pair.start(pair.server, [process.execPath, SERVERS, pair.serverV4, pair.serverV6], 'ready');
  // A connection established before the load that no process has accepted yet: no file holds it.
  // Its input kept open: nc would end the connection at its end.
  stoppedListener = await pair.start(pair.server, ['sh', '-c', `sleep 100000 | busybox nc -l -p ${QUEUED_PORT}`]);
  await waitFor('the stopped listener', async () => (await pair.kernelSockets(pair.server)).some((s) => s.localPort === QUEUED_PORT));
  process.kill(-stoppedListener, 'SIGSTOP');
  await pair.start(pair.client, ['sh', '-c', `sleep 100000 | busybox nc ${pair.serverV4} ${QUEUED_PORT}`]);
  await waitFor('the queued connection', async () =>
    (await pair.kernelSockets(pair.server)).some((s) => s.localPort === QUEUED_PORT && s.state === 'established'),
  );
  const loaded = loadBpfAddon();
  if (loaded instanceof Error) throw loaded; // built at npm ci here: missing is a failure, not a skip
  addon = loaded;
  handle = addon.load(defaultBpfObjectPath());
  source = new EbpfSocketSource({ addon, handle, procfsPath: '/proc' });
  // Connections kept open, made after the load: known from their state changes.
  for (const server of [pair.serverV4, pair.serverV4, pair.serverV6])
    await pair.start(pair.client, ['sh', '-c', `sleep 100000 | busybox nc ${server} 8080`]);
  await waitFor(
    '4 connections in the server namespace',
    async () => (await pair.kernelSockets(pair.server)).filter((s) => s.state === 'established').length === 4,
  );
}, 120_000);

afterAll(async () => {
  // Unset when beforeAll failed before making them.
  /* eslint-disable @typescript-eslint/no-unnecessary-condition */
  source?.close();
  await pair?.close();
  /* eslint-enable @typescript-eslint/no-unnecessary-condition */
});

describe(`the ebpf source on this kernel`, () => {
  it('loads every program', () => {
    expect(source.programs.map((p) => `${p.name} ${p.loaded} ${p.reason}`).sort()).toEqual([
      'dns_answers true ',
      'list_sockets true ',
      'on_state_change true ',
      'on_state_change_skipped true ',
      'on_state_change_skipped_twice true ',
      'seed_sockets true ',
    ]);
    expect([...source.capabilities].sort()).toEqual(EVERY_EBPF_CAPABILITY);
  });

  it('lists what ss lists in each namespace, socket for socket, with inodes and cookies', async () => {
    const kernel = { server: await pair.kernelSockets(pair.server), client: await pair.kernelSockets(pair.client) };
    const listed = await readNamespaces();
    const tcp = (s: SsSocket) => ({ ...s, inode: s.inode ?? 0 });
    expect(listed.server.sockets.map(key).sort()).toEqual(kernel.server.map(tcp).map(key).sort());
    expect(listed.client.sockets.map(key).sort()).toEqual(kernel.client.map(tcp).map(key).sort());
    // 9 listeners (seeded), 4 accepted or queued and 4 connecting ends, IPv4 and IPv6.
    expect(listed.server.sockets.filter((s) => s.state === 'listen')).toHaveLength(9);
    expect(listed.server.sockets.filter((s) => s.state === 'established')).toHaveLength(4);
    expect(listed.client.sockets.filter((s) => s.state === 'established')).toHaveLength(4);
    // ss asked the kernel for every cookie first: the same ones.
    const cookies = (sockets: readonly { cookie?: number }[]) => sockets.map((s) => s.cookie).sort();
    expect(cookies(listed.server.sockets)).toEqual(cookies(kernel.server));
    expect(cookies(listed.client.sockets)).toEqual(cookies(kernel.client));
  });

  it("lists a connection that waited in an accept queue at the load, with its listener's process, and its inode once accepted", async () => {
    const queued = <T extends { localPort: number; state: string }>(sockets: readonly T[]) =>
      sockets.filter((s) => s.localPort === QUEUED_PORT && s.state === 'established');
    const before = queued((await readNamespaces()).server.sockets);
    expect(before.map(key)).toEqual(queued(await pair.kernelSockets(pair.server)).map(key));
    expect(before[0]?.inode).toBe(0); // in the queue: no file yet
    process.kill(-stoppedListener, 'SIGCONT');
    await waitFor('the accept', async () => queued(await pair.kernelSockets(pair.server)).some((s) => (s.inode ?? 0) !== 0));
    const kernel = queued(await pair.kernelSockets(pair.server));
    expect(queued((await readNamespaces()).server.sockets).map(key)).toEqual(kernel.map(key));
    // Its holder is the listener's process: the one that accepted it (and holds it now, says ss).
    const holder = await pair.run(pair.server, ['ss', '-tnpH', 'state', 'established', `sport = :${QUEUED_PORT}`]);
    const record = decodeBpfRecords(addon.sockets(handle)).sockets.find(
      (s) => s.socket.localPort === QUEUED_PORT && s.socket.state === 'established',
    );
    expect(record?.holder).toBe(Number(/pid=(\d+)/.exec(holder)?.[1]));
  });

  it('sees every connection the peer closed between two reads: gone, or still closing and listed', async () => {
    const { passed, failed, client } = await between(`busybox nc ${pair.serverV4} 9401`);
    const closing = client.sockets.filter((s) => s.remotePort === 9401);
    console.log(`peer closed: ${passed.length} gone, still listed: ${closing.map((s) => s.state).join(' ')}`);
    expect(passed.filter((s) => s.remotePort === 9401 && s.state === 'established').length + closing.length).toBe(TIMES);
    expect(closing.map((s) => s.state)).not.toContain('established');
    expect(failed).toEqual([]);
  });

  it('sees every connection the peer reset between two reads', async () => {
    const { passed, failed } = await between(`busybox nc ${pair.serverV6} 9402`);
    expect(passed.filter((s) => s.remotePort === 9402 && s.remoteAddress === pair.serverV6)).toHaveLength(TIMES);
    expect(failed).toEqual([]);
  });

  it('sees every refused connect, with the address and port it was aimed at', async () => {
    const { passed, failed } = await between(`busybox nc ${pair.serverV4} 9999`);
    expect(failed.map((s) => `${s.state} ${s.remoteAddress}:${s.remotePort}`)).toEqual(
      Array<string>(TIMES).fill(`syn_sent ${pair.serverV4}:9999`),
    );
    expect(passed.filter((s) => s.remotePort === 9999)).toEqual([]);
  });

  it('follows TIME_WAIT: the client that closed first lists each connection in it, as ss does', async () => {
    const { client } = await between(`busybox nc ${pair.serverV4} 9403`);
    const kernel = (await pair.kernelSockets(pair.client)).filter((s) => s.state === 'time_wait' && s.remotePort === 9403);
    expect(kernel).toHaveLength(TIMES);
    const listed = client.sockets.filter((s) => s.state === 'time_wait' && s.remotePort === 9403);
    expect(listed.map(key).sort()).toEqual(kernel.map((s) => key({ ...s, inode: 0 })).sort());
  });

  it('reads the DNS answers a namespace receives (from port 53, IPv4 and IPv6), and no other datagram', async () => {
    const dns = source.dnsAnswers()!;
    dns.drain();
    // A DNS message dnsmasq sent (test/unit/names/fixtures): its IP and UDP headers left out.
    const message = Buffer.from(answers[0]!.hex, 'hex').subarray(28);
    const send = (from: string, port: number, to: string) =>
      pair.run(pair.server, [
        process.execPath,
        '-e',
        `const s = require('dgram').createSocket('${from.includes(':') ? 'udp6' : 'udp4'}');` +
          `s.bind(${port}, '${from}', () => s.send(Buffer.from('${message.toString('hex')}', 'hex'), 9053, '${to}', () => s.close()));`,
      ]);
    const sentFrom = Date.now();
    await send(pair.serverV4, 53, pair.clientV4);
    await send(pair.serverV6, 53, pair.clientV6);
    await send(pair.serverV4, 5353, pair.clientV4); // not DNS's port: never copied
    await new Promise((r) => setTimeout(r, 200));
    const client = netNamespaceInode(pair.id(pair.client));
    const received = receivedPackets(dns.drain()).filter((p) => p.netns === client);
    // From the IP header on: 20 + 8 bytes (IPv4), 40 + 8 (IPv6) before the message.
    expect(
      received.map((p) =>
        Buffer.from(p.packet)
          .subarray(p.packet[0]! >> 4 === 4 ? 28 : 48)
          .toString('hex'),
      ),
    ).toEqual([message.toString('hex'), message.toString('hex')]);
    // Received while they were sent (the kernel's monotonic time, made the wall clock's), in order.
    const [first, second] = received.map((p) => p.receivedMs);
    expect(first).toBeGreaterThanOrEqual(sentFrom - 50);
    expect(second).toBeGreaterThanOrEqual(first!);
    expect(second).toBeLessThanOrEqual(Date.now() + 50);
    expect(dns.lost()).toBe(0);
  });

  it('sees each connection of a storm once at each end, though the kernel skips on_state_change for some of its changes', async () => {
    // Connections shorter than a millisecond, from two processes at once: a packet's softirq that
    // changes a state while on_state_change runs in a process on that CPU is where the kernel skips it.
    const dir = mkdtempSync(join(tmpdir(), 'outpost-kernel-storm-'));
    try {
      const connstorm = await buildConnstorm(dir);
      await pair.start(pair.server, [connstorm, 'serve', String(STORM_PORT)]);
      await waitFor('the storm server', async () => (await pair.kernelSockets(pair.server)).some((s) => s.localPort === STORM_PORT));
      await readNamespaces(); // what came before is drained
      const [activeBefore, passiveBefore] = [
        await pair.counter(pair.client, 'TcpActiveOpens'),
        await pair.counter(pair.server, 'TcpPassiveOpens'),
      ];
      const made = await Promise.all(
        [1, 2].map(async () => Number(await pair.run(pair.client, [connstorm, 'connect', pair.serverV4, String(STORM_PORT), '1000', '3']))),
      );
      const opened = (await pair.counter(pair.client, 'TcpActiveOpens')) - activeBefore;
      const accepted = (await pair.counter(pair.server, 'TcpPassiveOpens')) - passiveBefore;
      const events = decodeBpfRecords(addon.drainEvents(handle)).sockets.filter((e) => e.stateCode === TCP_STATE_CODE.established);
      const at = (ns: string) => events.filter((e) => e.netns === netNamespaceInode(pair.id(ns)) && e.socket.remotePort !== 8080).length;
      const { stateChangesMadeUp, stateChangesSkipped } = addon.counters(handle);
      console.log(
        `storm: ${opened} connections, ${at(pair.client)} events at the client, ${at(pair.server)} at the server; made up ${stateChangesMadeUp}, skipped ${stateChangesSkipped}`,
      );
      expect(made.reduce((a, b) => a + b, 0)).toBe(opened);
      expect(opened).toBeGreaterThan(100);
      // None missing but those reported lost: changes none of the three programs handled (0–3 a
      // storm of 6,000 in the matrix). None twice but one now and then (1 in 6,000 in about one
      // storm of 8 on 7.3.4 and on 6.1: not understood yet, docs/kernels.md).
      for (const [end, kernel] of [
        [at(pair.client), opened],
        [at(pair.server), accepted],
      ] as const) {
        expect(end).toBeLessThanOrEqual(kernel + Math.ceil(kernel / 2000));
        expect(kernel - end).toBeLessThanOrEqual(stateChangesSkipped);
      }
      expect(stateChangesSkipped).toBeLessThanOrEqual(Math.ceil(opened / 1000));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lost nothing but what it reports: the state changes the kernel skipped on_state_change for, the programs after it handled', async () => {
    const { state_changes_skipped: _, ...kept } = source.losses();
    expect(kept).toEqual({ ring_buffer_full: 0, queue_full: 0, tracked_map_full: 0 });
    // A tracing program does not run where it already runs on that CPU (recursion_misses): seen in
    // a one-CPU VM on 7.3, and at 1,000 connections a second on 6.18. Each such change is one of the
    // two programs' after it, once. The kernel counts a skip before they run: its count is read
    // after ours, and again until the two agree (the storm's last changes may be under way).
    type Shown = { id: number; recursion_misses?: number };
    const skippedByKernel = () => {
      const shown = JSON.parse(execFileSync('bpftool', ['prog', 'show', 'name', 'on_state_change', '-j'], { encoding: 'utf8' })) as
        Shown | Shown[];
      // bpftool gives one program as an object, several as an array; the one loaded last is this test's.
      const [loaded] = (Array.isArray(shown) ? shown : [shown]).sort((a, b) => b.id - a.id);
      expect(loaded).toBeDefined();
      return loaded?.recursion_misses ?? 0;
    };
    let madeUp = addon.counters(handle).stateChangesMadeUp;
    let skipped = skippedByKernel();
    for (let tries = 0; madeUp !== skipped && tries < 20; tries++) {
      await new Promise((r) => setTimeout(r, 250));
      madeUp = addon.counters(handle).stateChangesMadeUp;
      skipped = skippedByKernel();
    }
    const lost = source.losses().state_changes_skipped;
    console.log(
      `state changes the kernel skipped on_state_change for: ${skipped}; handled by the programs after it: ${madeUp}; lost: ${lost}`,
    );
    // What the source reports lost is the kernel's count less those handled.
    expect(lost).toBe(Math.max(0, skipped - madeUp));
    // None handled twice but a rare few on 7.3.4 (2 more made up than skipped in one run of 563:
    // docs/kernels.md). Those lost, test 9 bounds.
    expect(madeUp).toBeLessThanOrEqual(skipped + Math.ceil(skipped / 100));
  });
});
