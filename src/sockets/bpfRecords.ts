/* eslint-disable @typescript-eslint/no-non-null-assertion -- byte decoding on the per-socket hot path: every index is bounded by the record or line length checked before it, and a check per byte would be paid per socket */
import { decodeSocketRecord, LITTLE_ENDIAN } from './sockDiagRecords.js';
import type { SocketHolder, TcpSocket } from './tcpSocket.js';

/**
 * Decoder of the eBPF source's records (struct socket_record in native/bpf/outpost.bpf.c): the
 * sock_diag record's 104 bytes (bytes 6, 12–15, 48–55 and 93 reused), then the namespace, the holder
 * and its name.
 */
export const BPF_RECORD_SIZE = 128;
const COMM_AT = 112;
const COMM_BYTES = 16;

/** The kernel's TCP state numbers the events use. */
export const TCP_STATE_CODE = { established: 1, synSent: 2, close: 7 } as const;

/** One socket as the eBPF programs saw it. */
export interface BpfSocket {
  socket: TcpSocket;
  /** The inode of its network namespace (the number in "net:[4026532185]"). */
  netns: number;
  /** The process that held it at load, or that connected or listened (an accepted socket: its listener's); 0 when unknown. Its name: socket.holder. */
  holder: number;
  /** That process's pid namespace inode (its container's, known after the process exited); 0 when unknown. */
  pidNamespace: number;
  /** The kernel's state number it had, and (events) the one it left. */
  stateCode: number;
  oldStateCode: number;
  /** A socket that entered TIME_WAIT (an event): when, in CLOCK_MONOTONIC nanoseconds (as a number: ms precision is plenty); else 0. */
  sinceNs: number;
  /** A connect that failed: the socket's error at its close (an errno: ECONNREFUSED, ETIMEDOUT, …); 0 when its process closed it first. */
  error: number;
}

export interface BpfDecodeResult {
  sockets: BpfSocket[];
  /** Records with an unknown family or state, or a partial record at the end. */
  skippedRecords: number;
}

export function decodeBpfRecords(records: Uint8Array): BpfDecodeResult {
  const view = new DataView(records.buffer, records.byteOffset, records.byteLength);
  const sockets: BpfSocket[] = [];
  let skippedRecords = 0;
  // One holder object per process of a read: most processes hold several sockets.
  const holders = new Map<number, SocketHolder>();
  const whole = records.byteLength - (records.byteLength % BPF_RECORD_SIZE);
  if (whole !== records.byteLength) skippedRecords++;
  for (let at = 0; at < whole; at += BPF_RECORD_SIZE) {
    const socket = decodeSocketRecord(records, view, at);
    if (!socket) {
      skippedRecords++;
      continue;
    }
    const pid = view.getUint32(at + 108, LITTLE_ENDIAN);
    if (pid !== 0) {
      let holder = holders.get(pid);
      if (!holder) holders.set(pid, (holder = { pid, name: commAt(records, at + COMM_AT) }));
      socket.holder = holder;
    }
    sockets.push({
      socket,
      netns: view.getUint32(at + 104, LITTLE_ENDIAN),
      holder: pid,
      pidNamespace: view.getUint32(at + 12, LITTLE_ENDIAN),
      stateCode: records[at + 1]!,
      oldStateCode: records[at + 6]!,
      sinceNs: view.getUint32(at + 48, LITTLE_ENDIAN) + view.getUint32(at + 52, LITTLE_ENDIAN) * 2 ** 32,
      error: records[at + 93]!,
    });
  }
  return { sockets, skippedRecords };
}

/** A task's comm: up to its NUL, as the kernel's bytes (UTF-8 where a process named itself so). */
function commAt(records: Uint8Array, at: number): string {
  let end = at;
  while (end < at + COMM_BYTES && records[end] !== 0) end++;
  return end === at ? '' : Buffer.from(records.buffer, records.byteOffset + at, end - at).toString('utf8');
}
