/* eslint-disable @typescript-eslint/no-non-null-assertion -- byte decoding on the per-socket hot path: every index is bounded by the record or line length checked before it, and a check per byte would be paid per socket */
import { endianness } from 'node:os';
import { formatIPv4, formatIPv6 } from '../net/ipAddress.js';
import { tcpStateFromCode, type TcpSocket } from './tcpSocket.js';

/**
 * Decoder of the records the sock_diag addon (native/sock_diag.c) returns: one fixed-size record
 * per socket, numbers in host byte order, addresses in network order as the kernel sends them.
 */
export const SOCK_DIAG_RECORD_SIZE = 104;

// The addon writes numbers as the host lays them out.
export const LITTLE_ENDIAN = endianness() === 'LE';

/** Every state of the contract (1–11) and request sockets (12, TCP_NEW_SYN_RECV): the kernel's state filter. */
export const ALL_TCP_STATES_MASK = 0b1_1111_1111_1110;

export interface SockDiagDecodeResult {
  /** Records with an unknown family or state, skipped. */
  skippedRecords: number;
}

/** Appends the sockets of `records` to `out`. */
export function decodeSockDiagRecords(records: Uint8Array, out: TcpSocket[]): SockDiagDecodeResult {
  const view = new DataView(records.buffer, records.byteOffset, records.byteLength);
  let skippedRecords = 0;
  const whole = records.byteLength - (records.byteLength % SOCK_DIAG_RECORD_SIZE);
  if (whole !== records.byteLength) skippedRecords++;
  for (let at = 0; at < whole; at += SOCK_DIAG_RECORD_SIZE) {
    const socket = decodeSocketRecord(records, view, at);
    if (socket) out.push(socket);
    else skippedRecords++;
  }
  return { skippedRecords };
}

/**
 * The socket of the record at `at`, or undefined for an unknown family or state. The eBPF
 * source's records (bpfRecords.ts) begin with the same 104 bytes.
 */
export function decodeSocketRecord(records: Uint8Array, view: DataView, at: number): TcpSocket | undefined {
  const family = records[at];
  const state = tcpStateFromCode(records[at + 1]!);
  if ((family !== 4 && family !== 6) || !state) return undefined;
  const address = (offset: number) =>
    family === 4
      ? formatIPv4(records[offset]!, records[offset + 1]!, records[offset + 2]!, records[offset + 3]!)
      : formatIPv6(records.subarray(offset, offset + 16));
  const socket: TcpSocket = {
    localAddress: address(at + 16),
    localPort: view.getUint16(at + 2, LITTLE_ENDIAN),
    remoteAddress: address(at + 32),
    remotePort: view.getUint16(at + 4, LITTLE_ENDIAN),
    state,
    inode: view.getUint32(at + 8, LITTLE_ENDIAN),
    // Exact below 2^53: a counter of sockets made since boot does not get there.
    cookie: view.getUint32(at + 56, LITTLE_ENDIAN) + view.getUint32(at + 60, LITTLE_ENDIAN) * 2 ** 32,
  };
  // A listener's tcp_info counts nothing of a connection.
  if (records[at + 92] === 1 && state !== 'listen') {
    socket.figures = {
      bytesAcked: view.getUint32(at + 64, LITTLE_ENDIAN) + view.getUint32(at + 68, LITTLE_ENDIAN) * 2 ** 32,
      bytesReceived: view.getUint32(at + 72, LITTLE_ENDIAN) + view.getUint32(at + 76, LITTLE_ENDIAN) * 2 ** 32,
      retransmits: view.getUint32(at + 80, LITTLE_ENDIAN),
      rttUs: view.getUint32(at + 84, LITTLE_ENDIAN),
      connectUs: view.getUint32(at + 88, LITTLE_ENDIAN),
      segmentsSent: view.getUint32(at + 96, LITTLE_ENDIAN),
    };
  }
  return socket;
}
