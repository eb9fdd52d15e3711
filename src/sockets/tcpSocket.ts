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
}
