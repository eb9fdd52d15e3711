/* eslint-disable @typescript-eslint/no-non-null-assertion -- byte decoding on the per-socket hot path: every index is bounded by the record or line length checked before it, and a check per byte would be paid per socket */
import { endianness } from 'node:os';
import { formatIPv4, formatIPv6 } from '../net/ipAddress.js';
import { tcpStateFromCode, type TcpSocket } from './tcpSocket.js';

/**
 * Parser for /proc/<pid>/net/tcp and tcp6 (net/ipv4/tcp_ipv4.c, net/ipv6/tcp_ipv6.c).
 *
 * It walks the bytes once with a cursor: no regex, no split, no string per field, because a
 * busy host has thousands of lines per namespace and this runs on every scrape.
 */

export interface ProcNetTcpParseResult {
  /** Lines that did not have the kernel's shape, skipped. */
  skippedLines: number;
}

/** /proc/net/tcp's timers are in clock ticks: USER_HZ, 100 on every architecture Node.js runs on. */
const MS_PER_TICK = 10;

/** When a read of the file began and ended (performance.now()): what a timer left is counted from. */
export interface ReadWindow {
  from: number;
  to: number;
}

const SPACE = 0x20;
const TAB = 0x09;
const NEWLINE = 0x0a;
const COLON = 0x3a;

const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX[0x41 + c] = 10 + c;
  HEX[0x61 + c] = 10 + c;
}

// The kernel prints each 32-bit word of an address with %08X of its in-memory value, so on a
// little-endian host the bytes of each word come out reversed.
const LITTLE_ENDIAN = endianness() === 'LE';

/** Reads one byte written as two hex digits; -1 when they are not hex. */
function hexByte(buf: Uint8Array, at: number): number {
  const hi = HEX[buf[at]!]!;
  const lo = HEX[buf[at + 1]!]!;
  return hi < 0 || lo < 0 ? -1 : (hi << 4) | lo;
}

const addressBytes = new Uint8Array(16);

/**
 * Decodes an address of `words` 32-bit words at `at` into addressBytes;
 * false when a digit is not hex.
 */
function decodeAddressWords(buf: Uint8Array, at: number, words: number): boolean {
  for (let w = 0; w < words; w++) {
    for (let i = 0; i < 4; i++) {
      const byte = hexByte(buf, at + w * 8 + i * 2);
      if (byte < 0) return false;
      addressBytes[w * 4 + (LITTLE_ENDIAN ? 3 - i : i)] = byte;
    }
  }
  return true;
}

function hexNumber(buf: Uint8Array, at: number, digits: number): number {
  let value = 0;
  for (let i = 0; i < digits; i++) {
    const d = HEX[buf[at + i]!]!;
    if (d < 0) return -1;
    value = value * 16 + d;
  }
  return value;
}

function skipBlanks(buf: Uint8Array, at: number, end: number): number {
  while (at < end && (buf[at] === SPACE || buf[at] === TAB)) at++;
  return at;
}

function skipField(buf: Uint8Array, at: number, end: number): number {
  while (at < end && buf[at] !== SPACE && buf[at] !== TAB) at++;
  return at;
}

/**
 * Parses one `address:port` field at `at`. Returns the position after it, or -1.
 * The address goes to `into[0]`, the port to `into[1]`.
 */
function parseEndpoint(buf: Uint8Array, at: number, end: number, family: 4 | 6, into: [string, number]): number {
  const hexLength = family === 4 ? 8 : 32;
  if (at + hexLength + 5 > end || buf[at + hexLength] !== COLON) return -1;
  if (!decodeAddressWords(buf, at, hexLength / 8)) return -1;
  const port = hexNumber(buf, at + hexLength + 1, 4);
  if (port < 0) return -1;
  into[0] = family === 4 ? formatIPv4(addressBytes[0]!, addressBytes[1]!, addressBytes[2]!, addressBytes[3]!) : formatIPv6(addressBytes);
  into[1] = port;
  return at + hexLength + 5;
}

const local: [string, number] = ['', 0];
const remote: [string, number] = ['', 0];

/** Parses one line (without its newline); undefined when it is not a socket line. */
function parseLine(buf: Uint8Array, start: number, end: number, family: 4 | 6, readWindow: ReadWindow | undefined): TcpSocket | undefined {
  // sl: "  12:"
  let at = skipBlanks(buf, start, end);
  const slStart = at;
  while (at < end && buf[at] !== COLON) {
    if (HEX[buf[at]!]! < 0) return undefined;
    at++;
  }
  if (at === slStart || at >= end) return undefined;
  at = skipBlanks(buf, at + 1, end);

  at = parseEndpoint(buf, at, end, family, local);
  if (at < 0 || (buf[at] !== SPACE && buf[at] !== TAB)) return undefined;
  at = parseEndpoint(buf, skipBlanks(buf, at, end), end, family, remote);
  if (at < 0 || (buf[at] !== SPACE && buf[at] !== TAB)) return undefined;

  at = skipBlanks(buf, at, end);
  const stateCode = hexNumber(buf, at, 2);
  const state = stateCode < 0 ? undefined : tcpStateFromCode(stateCode);
  if (state === undefined || (buf[at + 2] !== SPACE && buf[at + 2] !== TAB)) return undefined;
  at += 2;

  // tx_queue:rx_queue, tr:tm->when, retrnsmt, uid, timeout, then inode.
  let timeWaitLeftMs = -1;
  for (let field = 0; field < 5; field++) {
    at = skipBlanks(buf, at, end);
    if (at >= end) return undefined;
    // tr 3: a timewait minisock's timer, tm->when the clock ticks (USER_HZ) until it ends. Only
    // TIME_WAIT's: an orphan's FIN_WAIT2 minisock starts it again when it enters TIME_WAIT.
    if (field === 1 && state === 'time_wait' && buf[at] === 0x30 && buf[at + 1] === 0x33 && buf[at + 2] === COLON) {
      const ticks = hexNumber(buf, at + 3, 8);
      if (ticks >= 0) timeWaitLeftMs = ticks * MS_PER_TICK;
    }
    at = skipField(buf, at, end);
  }
  at = skipBlanks(buf, at, end);
  let inode = 0;
  const inodeStart = at;
  while (at < end && buf[at]! >= 0x30 && buf[at]! <= 0x39) inode = inode * 10 + (buf[at++]! - 0x30);
  if (at === inodeStart || (at < end && buf[at] !== SPACE && buf[at] !== TAB)) return undefined;

  const socket: TcpSocket = {
    localAddress: local[0],
    localPort: local[1],
    remoteAddress: remote[0],
    remotePort: remote[1],
    state,
    inode,
    cookie: 0,
  };
  // 0 left: the timer is due (the kernel prints no less), its end no longer tells when it began.
  if (readWindow && timeWaitLeftMs > 0) {
    socket.timeWaitEnds = { earliest: readWindow.from + timeWaitLeftMs, latest: readWindow.to + timeWaitLeftMs + MS_PER_TICK };
  }
  return socket;
}

/**
 * Appends the sockets of one /proc/net/tcp (family 4) or tcp6 (family 6) file to `out`.
 * The first line is the header. Lines that do not parse are counted, not thrown. With the
 * `readWindow` the file was read in, each timewait minisock gets the time its timer ends.
 */
export function parseProcNetTcp(
  buf: Uint8Array,
  family: 4 | 6,
  out: TcpSocket[],
  length: number = buf.length,
  readWindow?: ReadWindow,
): ProcNetTcpParseResult {
  let skippedLines = 0;
  let start = 0;
  let header = true;
  while (start < length) {
    let end = buf.indexOf(NEWLINE, start);
    if (end < 0 || end > length) end = length;
    if (header) {
      header = false;
    } else if (skipBlanks(buf, start, end) < end) {
      const socket = parseLine(buf, start, end, family, readWindow);
      if (socket) out.push(socket);
      else skippedLines++;
    }
    start = end + 1;
  }
  return { skippedLines };
}
