import { access } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { NamespaceUnreadableError, errorMessage } from '../errors.js';
import { isSharedNamespace, type NetNamespace } from '../namespaces/netNamespaces.js';
import { ProcFileReader } from './procFile.js';
import { parseProcNetTcp } from './procNetTcp.js';
import { readSocketOwners } from './socketOwners.js';
import type { NamespaceSockets, SocketReadResult, SocketSource } from './socketSource.js';
import type { TcpSocket } from './tcpSocket.js';

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

export interface ProcfsSourceOptions {
  procfsPath: string;
  /** Namespaces read at once. */
  concurrency?: number;
}

/**
 * Reads /proc/<pid>/net/tcp and tcp6 once per namespace. Needs only read access to /proc
 * (and, for shared namespaces, to /proc/<pid>/fd of container processes).
 */
export class ProcfsSocketSource implements SocketSource {
  readonly name = 'procfs' as const;
  readonly #procfsPath: string;
  readonly #concurrency: number;
  readonly #readers: ProcFileReader[] = [];

  constructor(options: ProcfsSourceOptions) {
    this.#procfsPath = options.procfsPath;
    this.#concurrency = options.concurrency ?? 4;
  }

  async read(namespaces: readonly NetNamespace[]): Promise<SocketReadResult> {
    const limit = pLimit(this.#concurrency);
    const [owners, tables] = await Promise.all([
      readSocketOwners(this.#procfsPath, namespaces.filter(isSharedNamespace)),
      Promise.all(namespaces.map((ns) => limit(() => this.#readNamespace(ns)))),
    ]);
    const result: SocketReadResult = { read: [], failed: [] };
    namespaces.forEach((namespace, i) => {
      const table = tables[i]!;
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

  /** Reads through each container's main pid in turn: a container may exit while we read. */
  async #readNamespace(ns: NetNamespace): Promise<{ sockets: TcpSocket[]; parseErrors: number } | Error> {
    const reader = this.#readers.pop() ?? new ProcFileReader();
    let lastError: unknown;
    try {
      for (const { pid } of ns.containers) {
        try {
          const sockets: TcpSocket[] = [];
          let parseErrors = 0;
          const dir = join(this.#procfsPath, String(pid), 'net');
          const v4 = await reader.read(join(dir, 'tcp'));
          parseErrors += parseProcNetTcp(v4.data, 4, sockets, v4.length).skippedLines;
          const v6 = await reader.read(join(dir, 'tcp6')).catch(async (error: NodeJS.ErrnoException) => {
            // No tcp6 while tcp is still there: a kernel booted without IPv6.
            if (error.code === 'ENOENT' && (await exists(join(dir, 'tcp')))) return undefined;
            throw error;
          });
          if (v6) parseErrors += parseProcNetTcp(v6.data, 6, sockets, v6.length).skippedLines;
          return { sockets, parseErrors };
        } catch (error) {
          lastError = error;
        }
      }
    } finally {
      this.#readers.push(reader);
    }
    return new NamespaceUnreadableError(`cannot read the TCP tables of ${ns.id}: ${errorMessage(lastError)}`, lastError);
  }
}
