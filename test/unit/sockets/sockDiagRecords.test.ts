import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SOCK_DIAG_RECORD_SIZE, decodeSockDiagRecords } from '../../../src/sockets/sockDiagRecords.js';
import type { TcpSocket } from '../../../src/sockets/tcpSocket.js';
import { parseSsInfo, parseSsOutput, socketKeys } from '../../support/ssOutput.js';
import { expectFiguresAsSs } from '../../support/figures.js';

// Captured from the sock_diag addon in a container's namespace, with `ss -tanHe` right after
// (test/unit/connections/fixtures/capture.mjs).
const records = readFileSync(new URL('../connections/fixtures/server-a.records', import.meta.url));
const ss = readFileSync(new URL('../connections/fixtures/server-a.ss', import.meta.url), 'utf8');
const ssField = (field: string) =>
  ss
    .trim()
    .split('\n')
    .map((line) => new RegExp(`${field}:(\\w+)`).exec(line)?.[1]);
const endpoints = (s: Omit<TcpSocket, 'inode' | 'cookie' | 'state'>) =>
  `${s.localAddress}:${s.localPort} ${s.remoteAddress}:${s.remotePort}`;

function decode(buffer: Uint8Array): { sockets: TcpSocket[]; skipped: number } {
  const sockets: TcpSocket[] = [];
  return { sockets, skipped: decodeSockDiagRecords(buffer, sockets).skippedRecords };
}

describe('decodeSockDiagRecords', () => {
  it('reads what ss saw: IPv4, IPv6, IPv4-mapped as IPv4, wildcards, TIME_WAIT', () => {
    const { sockets, skipped } = decode(records);
    expect(skipped).toBe(0);
    expect(socketKeys(sockets)).toEqual(socketKeys(parseSsOutput(ss)));
    expect(sockets.filter((s) => s.state === 'time_wait')).toHaveLength(3);
    expect(sockets.find((s) => s.remoteAddress === '10.213.41.3')?.localAddress).toBe('10.213.41.2');
  });

  it('reads the inode of every socket as ss -e shows it (0 for TIME_WAIT)', () => {
    const { sockets } = decode(records);
    const inodes = ssField('ino');
    const ssInodes = parseSsOutput(ss).map((s, i): [string, number] => [endpoints(s), Number(inodes[i])]);
    expect(new Map(sockets.map((s) => [endpoints(s), s.inode]))).toEqual(new Map(ssInodes));
  });

  it("reads the cookie of every socket as ss -e shows it (sk:), TIME_WAIT's included", () => {
    const { sockets } = decode(records);
    const cookies = ssField('sk');
    const ssCookies = parseSsOutput(ss).map((s, i): [string, number] => [endpoints(s), parseInt(cookies[i]!, 16)]);
    expect(new Map(sockets.map((s) => [endpoints(s), s.cookie]))).toEqual(new Map(ssCookies));
    expect(new Set(sockets.map((s) => s.cookie)).size).toBe(sockets.length);
  });

  it('skips records of an unknown family or state and a truncated tail, keeping the rest', () => {
    const mutated = Buffer.concat([records, records.subarray(0, 10)]);
    mutated[0] = 9; // family
    mutated[SOCK_DIAG_RECORD_SIZE + 1] = 99; // state
    const { sockets, skipped } = decode(mutated);
    expect(skipped).toBe(3);
    expect(sockets).toHaveLength(records.length / SOCK_DIAG_RECORD_SIZE - 2);
  });

  it('reads an empty namespace as no sockets', () => {
    expect(decode(new Uint8Array(0))).toEqual({ sockets: [], skipped: 0 });
  });
});

describe('decodeSockDiagRecords: the figures (INET_DIAG_INFO in the same dump)', () => {
  it.each([['server-a'], ['client-a']])(
    'are what ss -ti says of every connection of %s, and absent for TIME_WAIT and listeners',
    (name) => {
      const { sockets } = decode(readFileSync(new URL(`../connections/fixtures/${name}.records`, import.meta.url)));
      const info = parseSsInfo(readFileSync(new URL(`../connections/fixtures/${name}.ssi`, import.meta.url), 'utf8'));
      expect(info.length).toBeGreaterThan(0);
      for (const oracle of info) {
        const mine = sockets.find((s) => endpoints(s) === oracle.endpoints)?.figures;
        expectFiguresAsSs(mine, oracle);
        expect(mine!.connectUs).toBe(0);
      }
      for (const s of sockets.filter((s) => s.state === 'time_wait' || s.state === 'listen')) expect(s.figures).toBeUndefined();
    },
  );
});
