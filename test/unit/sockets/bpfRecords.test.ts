import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BPF_RECORD_SIZE, TCP_STATE_CODE, decodeBpfRecords, type BpfSocket } from '../../../src/sockets/bpfRecords.js';
import { TIME_WAIT_NS, TimeWaitSockets } from '../../../src/sockets/timeWaitSockets.js';
import { parseSsInfo, parseSsOutput, socketKeys } from '../../support/ssOutput.js';
import { expectFiguresAsSs } from '../../support/figures.js';

// Captured from the eBPF programs on a real kernel, with `ss -tanHe` in each namespace right after
// (fixtures/captureEbpf.mjs says what the two containers did).
const fixture = (name: string) => readFileSync(new URL(`fixtures/${name}`, import.meta.url));
const { ip4, namespaces, processes, monotonicNs } = JSON.parse(fixture('ebpf.json').toString()) as {
  ip4: string;
  namespaces: Record<'server' | 'client', { net: number; pid: number }>;
  processes: Record<'server' | 'client', { pid: number; name: string }[]>;
  monotonicNs: number;
};
const known = decodeBpfRecords(fixture('ebpf.sockets'));
const events = decodeBpfRecords(fixture('ebpf.events'));
const timeWaitEvents = events.sockets.filter((e) => e.sinceNs > 0);
const ss = { server: fixture('ebpf-server.ss').toString(), client: fixture('ebpf-client.ss').toString() };
const cookiesOf = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((line) => parseInt(/ sk:(\w+)/.exec(line)![1]!, 16));
const inodesOf = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((line) => Number(/ ino:(\d+)/.exec(line)![1]));

const listed = (role: 'server' | 'client'): BpfSocket[] =>
  [...known.sockets, ...new TimeWaitSockets().update(timeWaitEvents, known.sockets, monotonicNs)].filter(
    (s) => s.netns === namespaces[role].net,
  );

describe('decodeBpfRecords, and the listing of the known sockets and the TIME_WAIT events', () => {
  it('read whole records only', () => {
    for (const decoded of [known, events]) expect(decoded.skippedRecords).toBe(0);
    expect(fixture('ebpf.sockets').length % BPF_RECORD_SIZE).toBe(0);
    const cut = decodeBpfRecords(fixture('ebpf.sockets').subarray(0, BPF_RECORD_SIZE + 10));
    expect(cut.sockets).toHaveLength(1);
    expect(cut.skippedRecords).toBe(1);
  });

  it.each([['server'], ['client']] as const)(
    'list in the %s namespace what ss lists, with its cookies and inodes: the known sockets, then TIME_WAIT from the events',
    (role) => {
      const sockets = listed(role);
      expect(socketKeys(sockets.map((s) => s.socket))).toEqual(socketKeys(parseSsOutput(ss[role])));
      expect(sockets.map((s) => s.socket.cookie).sort()).toEqual(cookiesOf(ss[role]).sort());
      expect(sockets.map((s) => s.socket.inode).sort()).toEqual(inodesOf(ss[role]).sort());
      const timeWait = sockets.filter((s) => s.socket.state === 'time_wait');
      expect(timeWait.length).toBeGreaterThanOrEqual(2);
      // No file holds them: no inode, as ss says; and the kernel's time they began.
      for (const s of timeWait) expect([s.socket.inode, s.sinceNs > 0]).toEqual([0, true]);
    },
  );

  it("list each socket once, with the process that listened or connected (an accepted socket: its listener's) and its pid namespace, which is its container", () => {
    const established = known.sockets.filter((s) => s.socket.state === 'established');
    // The long connection, on both ends (the server's end held by nc and by the cat it runs).
    expect(established).toHaveLength(2);
    expect(new Set(known.sockets.map((s) => s.socket.cookie)).size).toBe(known.sockets.length);
    const listener = known.sockets.find((s) => s.socket.state === 'listen' && s.socket.localPort === 8080)!;
    for (const s of established) {
      const role = s.netns === namespaces.server.net ? 'server' : 'client';
      expect(s.holder).toBeGreaterThan(0);
      expect(s.pidNamespace).toBe(namespaces[role].pid);
      if (role === 'server') expect(s.holder).toBe(listener.holder);
      // Its process by pid and name, as /proc said of it: nc at both ends (the client's sh -c … | nc, the server's nc -ll).
      expect(processes[role]).toContainEqual(s.socket.holder);
      expect(s.socket.holder?.name).toBe('nc');
    }
  });

  it('read every connection established as an event on both ends, and the refused connect as a SYN_SENT that closed', () => {
    const established = events.sockets.filter((e) => e.stateCode === TCP_STATE_CODE.established);
    // The long one, three HTTP requests, and one the client closed first; each on both ends.
    expect(established.filter((e) => e.netns === namespaces.client.net)).toHaveLength(5);
    expect(established.filter((e) => e.netns === namespaces.server.net)).toHaveLength(5);
    expect(new Set(established.map((e) => e.socket.cookie)).size).toBe(10);
    const failed = events.sockets.filter((e) => e.stateCode === TCP_STATE_CODE.close && e.oldStateCode === TCP_STATE_CODE.synSent);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({
      netns: namespaces.client.net,
      pidNamespace: namespaces.client.pid,
      socket: { remoteAddress: ip4, remotePort: 9999 },
    });
    expect(failed[0]!.holder).toBeGreaterThan(0);
  });
});

describe('TimeWaitSockets', () => {
  const timeWait = timeWaitEvents[0]!;
  const live = known.sockets.find((s) => s.socket.state === 'established')!;
  const at = timeWait.sinceNs;

  it("keeps a timewait socket until the kernel's 60 s are over", () => {
    const timeWaits = new TimeWaitSockets();
    expect(timeWaits.update([timeWait], [], at)).toEqual([timeWait]);
    expect(timeWaits.update([], [], at + TIME_WAIT_NS - 1)).toEqual([timeWait]);
    expect(timeWaits.update([], [], at + TIME_WAIT_NS)).toEqual([]);
    expect(timeWaits.update([], [], at)).toEqual([]);
  });

  it('keeps, of two timewait sockets on one 4-tuple, the newer', () => {
    const older = { ...timeWait, sinceNs: at - 1e9, socket: { ...timeWait.socket, cookie: 1 } };
    expect(new TimeWaitSockets().update([older, timeWait], [], at)).toEqual([timeWait]);
    expect(new TimeWaitSockets().update([timeWait, older], [], at)).toEqual([timeWait]);
  });

  it('ends one for good when a known socket uses its 4-tuple again, in its namespace only', () => {
    const reused = { ...live, netns: timeWait.netns, socket: { ...timeWait.socket, state: 'established' as const, cookie: 2 }, sinceNs: 0 };
    const elsewhere = { ...reused, netns: reused.netns + 1 };
    const timeWaits = new TimeWaitSockets();
    expect(timeWaits.update([timeWait], [elsewhere], at)).toEqual([timeWait]);
    expect(timeWaits.update([], [reused], at)).toEqual([]);
    // The new connection closed: the kernel ended the old timewait socket, and so do we.
    expect(timeWaits.update([], [], at)).toEqual([]);
  });
});

describe('the figures of the eBPF records (tcp_sock, as tcp_info gives them)', () => {
  const info = (role: 'server' | 'client') => parseSsInfo(fixture(`ebpf-${role}.ssi`).toString());
  const endpointsOf = (s: BpfSocket) => `${s.socket.localAddress}:${s.socket.localPort} ${s.socket.remoteAddress}:${s.socket.remotePort}`;

  it.each([['server'], ['client']] as const)('of the open connections in the %s namespace are what ss -ti says', (role) => {
    const open = listed(role).filter((s) => s.socket.state === 'established');
    expect(open.length).toBeGreaterThan(0);
    const figures = new Map(open.map((s) => [endpointsOf(s), s.socket.figures]));
    for (const oracle of info(role)) {
      expectFiguresAsSs(figures.get(oracle.endpoints), oracle);
    }
    // The long connection carried 12,345 bytes each way (and the client's SYN counts one).
    expect(open.map((s) => s.socket.figures!.bytesReceived)).toContain(12_345);
  });

  it('of a closed connection are its last ones, at both ends: into TIME_WAIT (the closer) and closed (the other)', () => {
    // "hi\n" to the echo listener, which the client closed first.
    const short = events.sockets.filter((e) => e.sinceNs > 0 && e.socket.remotePort === 8080);
    expect(short).toHaveLength(1);
    const closer = short[0]!;
    const other = events.sockets.find(
      (e) => e.stateCode === TCP_STATE_CODE.close && e.socket.localPort === 8080 && e.socket.remotePort === closer.socket.localPort,
    );
    // 3 bytes each way; the kernel counts the client's SYN and each FIN as a byte.
    expect(closer.socket.figures).toMatchObject({ bytesAcked: 3 + 2, bytesReceived: 3 + 1 });
    expect(other?.socket.figures).toMatchObject({ bytesAcked: 3 + 1, bytesReceived: 3 + 1 });
    expect(other?.oldStateCode).toBe(9); // LAST_ACK: it closed after the client
  });

  it('give connect times to the ends that connected, and the socket error to the connect that failed', () => {
    const established = events.sockets.filter((e) => e.stateCode === TCP_STATE_CODE.established);
    for (const e of established) {
      const connected = e.oldStateCode === TCP_STATE_CODE.synSent;
      expect(e.socket.figures!.connectUs > 0, endpointsOf(e)).toBe(connected);
    }
    const failed = events.sockets.filter((e) => e.stateCode === TCP_STATE_CODE.close && e.oldStateCode === TCP_STATE_CODE.synSent);
    expect(failed.map((e) => [e.socket.remotePort, e.error])).toEqual([[9999, 111]]); // ECONNREFUSED
    expect(failed[0]!.socket.figures).toBeUndefined();
  });
});
