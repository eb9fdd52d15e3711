import { join } from 'node:path';
import type { NetNamespace } from '../namespaces/netNamespaces.js';
import { readNamespaceTables, type NamespaceTable } from './namespaceTables.js';
import type { SockDiagAddon } from './sockDiagAddon.js';
import { ALL_TCP_STATES_MASK, decodeSockDiagRecords } from './sockDiagRecords.js';
import { type SocketReadResult, type SocketSource, TABLE_READ_CAPABILITIES, type SourceCapability } from './socketSource.js';
import type { TcpSocket } from './tcpSocket.js';

export interface NetlinkSourceOptions {
  addon: SockDiagAddon;
  procfsPath: string;
  /** Namespaces dumped at once, each on a thread of its own. */
  concurrency?: number;
}

/**
 * NETLINK_SOCK_DIAG dumps inside each namespace, what `ss` does: the kernel filters by state and
 * skips the text formatting of /proc/net/tcp. Needs CAP_SYS_ADMIN (setns) besides what procfs needs.
 */
export class NetlinkSocketSource implements SocketSource {
  readonly name = 'netlink' as const;
  readonly capabilities: readonly SourceCapability[] = [...TABLE_READ_CAPABILITIES, 'socket_cookies', 'socket_figures'];
  readonly #options: Required<NetlinkSourceOptions>;

  constructor(options: NetlinkSourceOptions) {
    this.#options = { concurrency: 4, ...options };
  }

  read(namespaces: readonly NetNamespace[]): Promise<SocketReadResult> {
    return readNamespaceTables(namespaces, {
      readTable: (container) => this.readTable(container.pid),
      concurrency: this.#options.concurrency,
      procfsPath: this.#options.procfsPath,
    });
  }

  /** The TCP sockets of the namespace `pid` is in. */
  async readTable(pid: number): Promise<NamespaceTable> {
    const records = await this.#options.addon.readNamespace(join(this.#options.procfsPath, String(pid), 'ns', 'net'), ALL_TCP_STATES_MASK);
    const sockets: TcpSocket[] = [];
    const { skippedRecords } = decodeSockDiagRecords(records, sockets);
    return { sockets, parseErrors: skippedRecords };
  }
}
