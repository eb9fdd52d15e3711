import { expect } from 'vitest';
import type { SocketFigures } from '../../src/sockets/tcpSocket.js';
import type { SsInfo } from './ssOutput.js';

/** A socket's figures are what `ss -ti` said of it: the counters exactly, the RTT to ss's microsecond (it prints ms with three decimals). */
export function expectFiguresAsSs(mine: SocketFigures | undefined, oracle: SsInfo): void {
  expect(mine, oracle.endpoints).toBeDefined();
  expect([mine!.bytesAcked, mine!.bytesReceived, mine!.retransmits, mine!.segmentsSent]).toEqual([
    oracle.bytesAcked,
    oracle.bytesReceived,
    oracle.retransmits,
    oracle.segmentsSent,
  ]);
  expect(Math.abs(mine!.rttUs - oracle.rttUs)).toBeLessThanOrEqual(1);
}
