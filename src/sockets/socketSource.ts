import type { NetNamespace } from '../namespaces/netNamespaces.js';
import type { TcpSocket } from './tcpSocket.js';

/** The sockets of one namespace, and who holds them where the namespace is shared. */
export interface NamespaceSockets {
  namespace: NetNamespace;
  sockets: TcpSocket[];
  /**
   * For shared namespaces: socket inode → id of the container whose process holds it.
   * Sockets missing here are held by no container process (the host's, or no one's).
   */
  owners?: Map<number, string>;
  /** The same by socket cookie, from a source that knows who held or connected a socket (ebpf). */
  ownersByCookie?: Map<number, string>;
  /** Lines of the kernel's tables that did not parse. */
  parseErrors: number;
}

export interface NamespaceReadFailure {
  namespace: NetNamespace;
  error: Error;
}

export interface SocketReadResult {
  read: NamespaceSockets[];
  failed: NamespaceReadFailure[];
  /**
   * Sources that see connections as they happen (ebpf): connection ends established since the
   * last read that are gone by this one, as they were while established. Counted, never listed.
   */
  passed?: NamespaceSockets[];
  /** The same sources: connects that failed since the last read (syn_sent, the peer they tried). */
  failedConnects?: NamespaceSockets[];
  /**
   * The same sources: connection ends that closed since the last read other than into TIME_WAIT
   * (which is listed), in the state they left, with their last figures.
   */
  closed?: NamespaceSockets[];
}

/**
 * What a source with events could not keep or pass on since it started, by reason: events the
 * kernel's ring buffer had no room for, events dropped between two reads (outpost's queue full),
 * sockets the tracking map had no room for, state changes the kernel skipped the program for.
 * Past 0, counts and listings may miss something.
 */
export type SourceLosses = Record<'ring_buffer_full' | 'queue_full' | 'tracked_map_full' | 'state_changes_skipped', number>;

/**
 * What a source can see on this host (outpost_source_capability_info):
 * - sockets: the TCP sockets open at a read, in every state but those below;
 * - sockets_opened_before_start: those of before outpost started, too (the ebpf source without its
 *   seeding walk lists them once they change state);
 * - request_sockets: half-open connections, still request sockets (syn_recv before the final ACK);
 * - socket_cookies: the kernel's cookie of each socket (one connection's identity from SYN to TIME_WAIT);
 * - connection_events: connections established and gone between two reads, each seen;
 * - connect_failures: connects that failed (SYN_SENT → CLOSE);
 * - time_wait_events: sockets entering TIME_WAIT as they do, whoever closed first;
 * - socket_processes: the process that held, connected or listened on each socket;
 * - socket_figures: bytes, retransmits and RTT of each open connection (tcp_info);
 * - closed_figures: a connection's last figures when it closes, however short it was;
 * - connect_times: the time from connect to established of each outbound connection;
 * - connect_failure_reasons: why each failed connect failed (the socket's error).
 */
export const SOURCE_CAPABILITIES = [
  'sockets',
  'sockets_opened_before_start',
  'request_sockets',
  'socket_cookies',
  'connection_events',
  'connect_failures',
  'time_wait_events',
  'socket_processes',
  'socket_figures',
  'closed_figures',
  'connect_times',
  'connect_failure_reasons',
] as const;
export type SourceCapability = (typeof SOURCE_CAPABILITIES)[number];

/** What reading the kernel's tables gives: every socket listed, as it is now. */
export const TABLE_READ_CAPABILITIES: readonly SourceCapability[] = ['sockets', 'sockets_opened_before_start', 'request_sockets'];

/** A way to read the TCP sockets of network namespaces. */
export interface SocketSource {
  readonly name: 'procfs' | 'netlink' | 'exec' | 'ebpf';
  /** What it can see here (see SourceCapability). */
  readonly capabilities: readonly SourceCapability[];
  read(namespaces: readonly NetNamespace[]): Promise<SocketReadResult>;
  /** Sources with events (ebpf): what they lost so far. */
  losses?(): SourceLosses;
  /** Releases what the source holds in the kernel (the eBPF programs). */
  close?(): void;
}
