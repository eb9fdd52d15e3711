import pLimit from 'p-limit';
import type { Container } from '../inventory/container.js';
import { NamespaceUnreadableError, errorMessage } from '../base/errors.js';
import { isSharedNamespace, type NetNamespace } from '../namespaces/netNamespaces.js';
import { readSocketOwners } from './socketOwners.js';
import type { NamespaceSockets, SocketReadResult } from './socketSource.js';
import type { TcpSocket } from './tcpSocket.js';

/** The TCP table of one namespace, as one source read it. */
export interface NamespaceTable {
  sockets: TcpSocket[];
  /** Lines or records that did not have the kernel's shape, skipped. */
  parseErrors: number;
}

export interface NamespaceTablesOptions {
  /** Reads the table of the namespace `container` is in. */
  readTable: (container: Container) => Promise<NamespaceTable>;
  /** Namespaces read at once. */
  concurrency: number;
  /** Where to find the holders of sockets in shared namespaces; undefined: they stay unknown. */
  procfsPath: string | undefined;
}

/**
 * What every source does around its own read: namespaces in parallel (bounded), each through its
 * containers in turn (a container may exit while we read: the next one in the namespace serves),
 * and for shared namespaces who holds which socket.
 */
export async function readNamespaceTables(namespaces: readonly NetNamespace[], options: NamespaceTablesOptions): Promise<SocketReadResult> {
  const limit = pLimit(options.concurrency);
  const shared = namespaces.filter(isSharedNamespace);
  const [owners, tables] = await Promise.all([
    options.procfsPath !== undefined && shared.length > 0
      ? readSocketOwners(options.procfsPath, shared)
      : new Map<string, Map<number, string>>(),
    Promise.all(namespaces.map((ns) => limit(() => readOneNamespace(ns, options.readTable)))),
  ]);
  const result: SocketReadResult = { read: [], failed: [] };
  namespaces.forEach((namespace, i) => {
    const table = tables[i];
    if (table === undefined) return;
    if (table instanceof Error) {
      result.failed.push({ namespace, error: table });
      return;
    }
    const read: NamespaceSockets = { namespace, sockets: table.sockets, parseErrors: table.parseErrors };
    const nsOwners = owners.get(namespace.id);
    if (nsOwners) read.owners = nsOwners;
    result.read.push(read);
  });
  return result;
}

async function readOneNamespace(ns: NetNamespace, readTable: NamespaceTablesOptions['readTable']): Promise<NamespaceTable | Error> {
  let lastError: unknown;
  for (const container of ns.containers) {
    try {
      return await readTable(container);
    } catch (error) {
      lastError = error;
    }
  }
  return new NamespaceUnreadableError(`cannot read the TCP tables of ${ns.id}: ${errorMessage(lastError)}`, lastError);
}
