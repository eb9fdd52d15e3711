import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseProcNetTcp } from '../../../src/sockets/procNetTcp.js';
import type { TcpSocket } from '../../../src/sockets/tcpSocket.js';
import { parseSsOutput, socketKeys } from '../../support/ssOutput.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));

function parseBoth(prefix: string): { sockets: TcpSocket[]; skipped: number } {
  const sockets: TcpSocket[] = [];
  const v4 = parseProcNetTcp(fixture(`${prefix}.tcp`), 4, sockets);
  const v6 = parseProcNetTcp(fixture(`${prefix}.tcp6`), 6, sockets);
  return { sockets, skipped: v4.skippedLines + v6.skippedLines };
}

describe('parseProcNetTcp', () => {
  it('reads a container namespace exactly as ss saw it at capture time', () => {
    const { sockets, skipped } = parseBoth('bridge-server');
    const oracle = parseSsOutput(fixture('bridge-server.ss').toString());
    expect(skipped).toBe(0);
    expect(socketKeys(sockets)).toEqual(socketKeys(oracle));
  });

  it('decodes IPv4, IPv6, IPv4-mapped IPv6, wildcards, ports, states and inodes', () => {
    const { sockets } = parseBoth('bridge-server');
    const find = (pred: (s: TcpSocket) => boolean) => sockets.filter(pred);
    // IPv4 loopback listener, and the embedded DNS listener.
    expect(find((s) => s.localAddress === '127.0.0.1' && s.localPort === 6060 && s.state === 'listen')).toHaveLength(1);
    expect(find((s) => s.localAddress === '127.0.0.11' && s.state === 'listen')).toHaveLength(1);
    // IPv6-only listeners, on ::1 and on a global address.
    expect(find((s) => s.localAddress === '::1' && s.localPort === 7070 && s.state === 'listen')).toHaveLength(1);
    expect(find((s) => s.localAddress === 'fd00:213:7::2' && s.localPort === 7071)).toHaveLength(1);
    // Dual-stack wildcard listener: "::" in tcp6.
    const wildcard = find((s) => s.localAddress === '::' && s.localPort === 8080);
    expect(wildcard).toHaveLength(1);
    expect(wildcard[0]!.remoteAddress).toBe('::');
    expect(wildcard[0]!.inode).toBeGreaterThan(0);
    // An IPv4 client seen by a tcp6 socket comes out as IPv4.
    const mapped = find((s) => s.remoteAddress === '10.213.8.3');
    expect(mapped).toHaveLength(1);
    expect(mapped[0]!.localAddress).toBe('10.213.8.2');
    expect(mapped[0]!.state).toBe('established');
    // TIME_WAIT sockets are held by no descriptor.
    const timeWait = find((s) => s.state === 'time_wait');
    expect(timeWait.length).toBeGreaterThan(0);
    for (const s of timeWait) expect(s.inode).toBe(0);
  });

  it('reads the host namespace tables', () => {
    const { sockets, skipped } = parseBoth('host');
    expect(skipped).toBe(0);
    expect(sockets.length).toBeGreaterThan(0);
  });

  it('skips and counts lines that are not the kernel shape, keeping the good ones', () => {
    const good = fixture('bridge-server.tcp').toString().split('\n');
    const text = [
      good[0],
      good[1],
      'garbage',
      '   7: 0100007F:17AC',
      '   8: 0100007G:17AC 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1',
      '   9: 0100007F:17AC 00000000:0000 0F 00000000:00000000 00:00000000 00000000     0        0 1 1',
      '  10: 0100007F:17AC 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12x 1',
      good[2],
      '',
    ].join('\n');
    const out: TcpSocket[] = [];
    const { skippedLines } = parseProcNetTcp(Buffer.from(text), 4, out);
    expect(skippedLines).toBe(5);
    expect(out).toHaveLength(2);
  });

  it('honours the length of a reused buffer', () => {
    const data = fixture('bridge-server.tcp');
    const big = Buffer.alloc(data.length + 100, 'x');
    data.copy(big);
    const out: TcpSocket[] = [];
    const { skippedLines } = parseProcNetTcp(big, 4, out, data.length);
    expect(skippedLines).toBe(0);
    expect(out).toHaveLength(data.toString().trim().split('\n').length - 1);
  });
});
