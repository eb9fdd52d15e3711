import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { NetNamespace } from '../namespaces/netNamespaces.js';
import { readNamespaceTables, type NamespaceTable } from './namespaceTables.js';
import { ProcFileReader } from './procFile.js';
import { parseProcNetTcp } from './procNetTcp.js';
import { type SocketReadResult, type SocketSource, TABLE_READ_CAPABILITIES, type SourceCapability } from './socketSource.js';
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
  readonly capabilities: readonly SourceCapability[] = TABLE_READ_CAPABILITIES;
  readonly #procfsPath: string;
  readonly #concurrency: number;
  // One growing buffer per concurrent read, reused from scrape to scrape.
  readonly #readers: ProcFileReader[] = [];

  constructor(options: ProcfsSourceOptions) {
    this.#procfsPath = options.procfsPath;
    this.#concurrency = options.concurrency ?? 4;
  }

  read(namespaces: readonly NetNamespace[]): Promise<SocketReadResult> {
    return readNamespaceTables(namespaces, {
      readTable: (container) => this.readTable(container.pid),
      concurrency: this.#concurrency,
      procfsPath: this.#procfsPath,
    });
  }

  /** The TCP tables of the namespace `pid` is in. */
  async readTable(pid: number): Promise<NamespaceTable> {
    const reader = this.#readers.pop() ?? new ProcFileReader();
    try {
      const sockets: TcpSocket[] = [];
      let parseErrors = 0;
      const dir = join(this.#procfsPath, String(pid), 'net');
      let from = performance.now();
      const v4 = await reader.read(join(dir, 'tcp'));
      parseErrors += parseProcNetTcp(v4.data, 4, sockets, v4.length, { from, to: performance.now() }).skippedLines;
      from = performance.now();
      const v6 = await reader.read(join(dir, 'tcp6')).catch(async (error: unknown) => {
        // No tcp6 while tcp is still there: a kernel booted without IPv6.
        if ((error as NodeJS.ErrnoException).code === 'ENOENT' && (await exists(join(dir, 'tcp')))) return undefined;
        throw error;
      });
      if (v6) parseErrors += parseProcNetTcp(v6.data, 6, sockets, v6.length, { from, to: performance.now() }).skippedLines;
      return { sockets, parseErrors };
    } finally {
      this.#readers.push(reader);
    }
  }
}
