/** TCP states as named in the metric contract, indexed by the kernel's numeric state (include/net/tcp_states.h). */
export const TCP_STATES = [
  'established',
  'syn_sent',
  'syn_recv',
  'fin_wait1',
  'fin_wait2',
  'time_wait',
  'close',
  'close_wait',
  'last_ack',
  'listen',
  'closing',
] as const;

export type TcpState = (typeof TCP_STATES)[number];

/**
 * The states of a connection from its establishment to TIME_WAIT. Listeners, connects that
 * never completed (syn_sent), request sockets (syn_recv) and closed sockets are no connection.
 */
export const CONNECTION_STATES: ReadonlySet<TcpState> = new Set<TcpState>([
  'established',
  'fin_wait1',
  'fin_wait2',
  'close_wait',
  'closing',
  'last_ack',
  'time_wait',
]);

/**
 * The kernel's state number → contract name. TCP_NEW_SYN_RECV (12) is a request socket
 * that `ss` and the contract call syn_recv.
 */
export function tcpStateFromCode(code: number): TcpState | undefined {
  if (code >= 1 && code <= 11) return TCP_STATES[code - 1];
  if (code === 12) return 'syn_recv';
  return undefined;
}

/**
 * What the kernel counts of one connection (tcp_info, or the same fields of the tcp_sock): figures
 * since the connection began. Only full sockets have them: not listeners, request sockets or the
 * TIME_WAIT minisock (the ebpf source keeps a TIME_WAIT end's last figures from its event).
 */
export interface SocketFigures {
  /** tcpi_bytes_acked: bytes sent and acknowledged by the peer (the SYN and the FIN count one each). */
  bytesAcked: number;
  /** tcpi_bytes_received: bytes received in order (the FIN counts one). */
  bytesReceived: number;
  /** tcpi_total_retrans: segments retransmitted. */
  retransmits: number;
  /** tcpi_segs_out: segments sent, retransmitted ones included. */
  segmentsSent: number;
  /** tcpi_rtt: the smoothed round-trip time, in microseconds; 0 before the first sample. */
  rttUs: number;
  /** Outbound connections (ebpf only): microseconds from connect() to established; else 0. */
  connectUs: number;
}

/** One TCP socket as the kernel reports it. Addresses are canonical text; IPv4-mapped IPv6 is IPv4. */
export interface TcpSocket {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  state: TcpState;
  /** 0 for sockets no file descriptor holds (TIME_WAIT, request sockets). */
  inode: number;
  /**
   * The kernel's socket cookie (netlink only; 0 from procfs and exec): the same from SYN to
   * TIME_WAIT and never handed out twice, so a reused 4-tuple shows as a new cookie.
   */
  cookie: number;
  /**
   * procfs and exec: when the TIME_WAIT timer of this minisock ends, between
   * `earliest` and `latest` (performance.now(), the read's own span). A TIME_WAIT ends 60 s after it
   * began, so an end later than the last read's is a new TIME_WAIT on a reused 4-tuple: what tells
   * connections apart where there is no cookie.
   */
  timeWaitEnds?: { earliest: number; latest: number };
  /** Its figures, when the source reads them (netlink, ebpf) and the socket has them. */
  figures?: SocketFigures;
  /** A connect that failed (ebpf): the socket's error at its close, an errno; 0 when its process closed it first. */
  connectError?: number;
  /**
   * The process that connected it, or listens where it was accepted, as the kernel knew it then
   * (ebpf: known after the process exited); the other sources find a holder only while it holds it.
   */
  holder?: SocketHolder;
}

/** A process, by its pid (in the host's pid namespace) and its name (comm). */
export interface SocketHolder {
  pid: number;
  name: string;
}

/** Why a connect failed, as the contract names it (container_tcp_connect_failures_total{reason}). */
export const CONNECT_FAILURE_REASONS = ['refused', 'timeout', 'reset', 'unreachable', 'aborted', 'other'] as const;
export type ConnectFailureReason = (typeof CONNECT_FAILURE_REASONS)[number];

/**
 * The reason of a socket error at a failed connect (Linux errnos): the peer answered with a reset
 * (ECONNREFUSED), no answer came within the SYN retries (ETIMEDOUT), a reset after all
 * (ECONNRESET), an ICMP error said there is no way (EHOSTUNREACH, ENETUNREACH); no error: the
 * process closed the socket before the kernel gave up (aborted).
 */
export function connectFailureReason(errno: number | undefined): ConnectFailureReason {
  switch (errno) {
    case 111:
      return 'refused';
    case 110:
      return 'timeout';
    case 104:
      return 'reset';
    case 113:
    case 101:
      return 'unreachable';
    case 0:
    case undefined:
      return 'aborted';
    default:
      return 'other';
  }
}
