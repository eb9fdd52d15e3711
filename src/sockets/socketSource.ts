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
}

/** A way to read the TCP sockets of network namespaces (procfs here; netlink and exec later). */
export interface SocketSource {
  readonly name: 'procfs' | 'netlink' | 'exec';
  read(namespaces: readonly NetNamespace[]): Promise<SocketReadResult>;
}
