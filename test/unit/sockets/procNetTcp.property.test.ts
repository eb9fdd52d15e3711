import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseFibTrieLocalAddresses, parseIfInet6Addresses } from '../../../src/net/hostAddresses.js';
import { parseProcNetTcp } from '../../../src/sockets/procNetTcp.js';
import type { TcpSocket } from '../../../src/sockets/tcpSocket.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const realLines = [...fixture('bridge-server.tcp').split('\n').slice(1), ...fixture('bridge-server.tcp6').split('\n').slice(1)].filter(
  (l) => l.trim(),
);

/** A real line with a random edit: a byte changed, a cut, a doubling, an insertion. */
const mutatedLine = fc
  .tuple(fc.constantFrom(...realLines), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('replace', 'cut', 'double', 'insert'))
  .map(([line, at, byte, how]) => {
    const i = at % (line.length + 1);
    const c = String.fromCharCode(byte);
    if (how === 'replace') return line.slice(0, i) + c + line.slice(i + 1);
    if (how === 'cut') return line.slice(0, i);
    if (how === 'double') return line.slice(0, i) + line.slice(i);
    return line.slice(0, i) + c + line.slice(i);
  });

const anyLine = fc.oneof(fc.string({ maxLength: 200 }), fc.stringMatching(/^[ 0-9A-F:x]{0,200}$/), mutatedLine);

/** Non-blank lines after the header: each is either parsed or counted as skipped. */
const bodyLines = (lines: string[]) => lines.filter((l) => l.trim()).length;

describe('the /proc/net/tcp parser on hostile input (fast-check)', () => {
  it('never throws, and accounts for every line: parsed or counted as skipped', () => {
    fc.assert(
      fc.property(fc.array(anyLine, { maxLength: 50 }), fc.constantFrom<4 | 6>(4, 6), (lines, family) => {
        const text = ['  sl  local_address rem_address', ...lines].join('\n');
        const out: TcpSocket[] = [];
        const { skippedLines } = parseProcNetTcp(Buffer.from(text, 'latin1'), family, out);
        const newlineFree = lines.flatMap((l) => l.split('\n'));
        expect(out.length + skippedLines).toBe(bodyLines(newlineFree));
      }),
      { numRuns: 2_000 },
    );
  });

  it('returns only well-formed sockets, whatever it was fed', () => {
    fc.assert(
      fc.property(fc.array(mutatedLine, { maxLength: 30 }), (lines) => {
        const out: TcpSocket[] = [];
        parseProcNetTcp(Buffer.from(['header', ...lines].join('\n'), 'latin1'), 6, out);
        for (const s of out) {
          expect(s.localPort).toBeGreaterThanOrEqual(0);
          expect(s.localPort).toBeLessThanOrEqual(0xffff);
          expect(s.remotePort).toBeLessThanOrEqual(0xffff);
          expect(Number.isSafeInteger(s.inode)).toBe(true);
          expect(s.localAddress.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 1_000 },
    );
  });

  it('still reads the good lines among bad ones', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ maxLength: 80 }).filter((l) => !/^\s*[0-9A-Fa-f]+:/.test(l)),
          { maxLength: 20 },
        ),
        (junk) => {
          const good = fixture('bridge-server.tcp')
            .split('\n')
            .slice(1)
            .filter((l) => l.trim());
          const text = ['header', ...junk.flatMap((j, i) => [j.replace(/\n/g, ' '), good[i % good.length]!])].join('\n');
          const out: TcpSocket[] = [];
          parseProcNetTcp(Buffer.from(text, 'latin1'), 4, out);
          expect(out).toHaveLength(junk.length);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('never throws on random fib_trie and if_inet6 text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 2_000 }), (text) => {
        for (const a of parseIfInet6Addresses(text)) expect(a).toMatch(/^[0-9a-f:.]+$/);
        expect(Array.isArray(parseFibTrieLocalAddresses(text))).toBe(true);
      }),
      { numRuns: 1_000 },
    );
  });
});
