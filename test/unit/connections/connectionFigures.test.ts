import { describe, expect, it } from 'vitest';
import type { AttributedSocket } from '../../../src/attribution/attribution.js';
import { FigureLedger } from '../../../src/connections/connectionFigures.js';
import { connectFailureReason } from '../../../src/sockets/tcpSocket.js';
import { capturedCollection } from '../../support/connectionFixtures.js';

// Phase a of the captured netlink tables: the long connection (12,345 bytes each way) open at both
// ends, three short ones in TIME_WAIT on the server (no figures: the kernel keeps none there).
const phaseA = capturedCollection('a', 'netlink');
const long = (sockets: readonly AttributedSocket[]) => sockets.filter((s) => s.state === 'established');
const sum = (figures: { sentBytes: number; receivedBytes: number }[]) =>
  figures.reduce((a, f) => [a[0]! + f.sentBytes, a[1]! + f.receivedBytes], [0, 0]);
const grown = (s: AttributedSocket, by: number): AttributedSocket => ({
  ...s,
  figures: {
    ...s.figures!,
    bytesAcked: s.figures!.bytesAcked + by,
    bytesReceived: s.figures!.bytesReceived + by,
    retransmits: 2,
    segmentsSent: s.figures!.segmentsSent + 3,
  },
});

describe('FigureLedger', () => {
  it('counts all an end has at first sight, and nothing of TIME_WAIT ends, which have no figures', () => {
    const figures = new FigureLedger().observe(phaseA, []);
    expect(figures).toHaveLength(2);
    // The client's bytes_acked counts its SYN.
    expect(sum(figures)).toEqual([12_346 + 12_345, 12_345 * 2]);
    expect(figures.every((f) => f.rttSeconds! > 0 && f.rttSeconds! < 0.01)).toBe(true);
  });

  it('counts only what grew since the last collection, however many collections see an end', () => {
    const ledger = new FigureLedger();
    ledger.observe(phaseA, []);
    expect(sum(ledger.observe(phaseA, []))).toEqual([0, 0]);
    const later = ledger.observe(
      phaseA.map((s) => (s.figures ? grown(s, 1000) : s)),
      [],
    );
    expect(sum(later)).toEqual([2000, 2000]);
    expect(later.map((f) => f.retransmits)).toEqual([2, 2]);
    expect(later.map((f) => f.sentSegments)).toEqual([3, 3]);
  });

  it("counts a closed end's last figures once, then forgets it", () => {
    const ledger = new FigureLedger();
    ledger.observe(phaseA, []);
    const open = long(phaseA);
    const closed = open.map((s) => grown(s, 500));
    const rest = phaseA.filter((s) => s.state !== 'established');
    expect(sum(ledger.observe(rest, closed))).toEqual([1000, 1000]);
    expect(ledger.size).toBe(0);
    // Listed no more, it adds nothing.
    expect(sum(ledger.observe(rest, []))).toEqual([0, 0]);
  });

  it('counts an end the ledger never saw open, closed between two collections, in full', () => {
    expect(sum(new FigureLedger().observe([], long(phaseA)))).toEqual([12_346 + 12_345, 12_345 * 2]);
  });

  it('takes another cookie on the same 4-tuple as a new connection', () => {
    const ledger = new FigureLedger();
    ledger.observe(phaseA, []);
    const reused = phaseA.map((s) => (s.figures ? { ...s, cookie: s.cookie + 1000 } : s));
    expect(sum(ledger.observe(reused, []))).toEqual([12_346 + 12_345, 12_345 * 2]);
  });

  it('samples the RTT of an end listed in TIME_WAIT once: in the collection after it closed', () => {
    const ledger = new FigureLedger();
    ledger.observe(phaseA, []);
    // The ebpf source lists a TIME_WAIT end with the figures of its event.
    const timeWait = long(phaseA).map((s): AttributedSocket => ({ ...s, state: 'time_wait' }));
    expect(ledger.observe(timeWait, []).map((f) => f.rttSeconds !== undefined)).toEqual([true, true]);
    expect(ledger.observe(timeWait, []).map((f) => f.rttSeconds)).toEqual([undefined, undefined]);
  });

  it('keeps the memory of a namespace that could not be read', () => {
    const ledger = new FigureLedger();
    ledger.observe(phaseA, []);
    const server = phaseA.find((s) => s.figures)!.namespace.id;
    ledger.observe(
      phaseA.filter((s) => s.namespace.id !== server),
      [],
      new Set([server]),
    );
    expect(sum(ledger.observe(phaseA, []))).toEqual([0, 0]);
  });
});

describe('connectFailureReason', () => {
  it.each([
    [111, 'refused'],
    [110, 'timeout'],
    [104, 'reset'],
    [113, 'unreachable'],
    [101, 'unreachable'],
    [0, 'aborted'],
    [5, 'other'],
  ] as const)('errno %i is %s', (errno, reason) => {
    expect(connectFailureReason(errno)).toBe(reason);
  });
});
