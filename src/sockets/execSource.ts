import type Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import type { NetNamespace } from '../namespaces/netNamespaces.js';
import { readNamespaceTables, type NamespaceTable } from './namespaceTables.js';
import { parseProcNetTcp } from './procNetTcp.js';
import { type SocketReadResult, type SocketSource, TABLE_READ_CAPABILITIES, type SourceCapability } from './socketSource.js';
import type { TcpSocket } from './tcpSocket.js';

export interface ExecSourceOptions {
  docker: Docker;
  /** Containers exec'd into at once. */
  concurrency?: number;
}

/**
 * Splits the output of `cat /proc/net/tcp /proc/net/tcp6` at the second table's header line
 * ("  sl  local_address …"): the first table is IPv4, the second IPv6.
 */
export function splitProcNetTcpTables(output: Buffer): { v4: Buffer; v6: Buffer | undefined } {
  const firstLineEnd = output.indexOf(0x0a);
  if (firstLineEnd < 0) return { v4: output, v6: undefined };
  const secondHeader = output.indexOf('local_address', firstLineEnd);
  if (secondHeader < 0) return { v4: output, v6: undefined };
  const lineStart = output.lastIndexOf(0x0a, secondHeader) + 1;
  return { v4: output.subarray(0, lineStart), v6: output.subarray(lineStart) };
}

/**
 * The ancestor's way: `docker exec <container> cat /proc/net/tcp /proc/net/tcp6`, through the
 * Docker API. For an engine whose /proc is out of reach (a remote host). It costs a process in
 * every container on every scrape, needs `cat` in the image and the API's exec endpoints, and
 * cannot tell apart the containers of a shared namespace: it is opt-in.
 */
export class ExecSocketSource implements SocketSource {
  readonly name = 'exec' as const;
  readonly capabilities: readonly SourceCapability[] = TABLE_READ_CAPABILITIES;
  readonly #docker: Docker;
  readonly #concurrency: number;

  constructor(options: ExecSourceOptions) {
    this.#docker = options.docker;
    this.#concurrency = options.concurrency ?? 4;
  }

  read(namespaces: readonly NetNamespace[]): Promise<SocketReadResult> {
    return readNamespaceTables(namespaces, {
      readTable: (container) => this.readTable(container.id),
      concurrency: this.#concurrency,
      procfsPath: undefined,
    });
  }

  async readTable(containerId: string): Promise<NamespaceTable> {
    const exec = await this.#docker.getContainer(containerId).exec({
      Cmd: ['cat', '/proc/net/tcp', '/proc/net/tcp6'],
      AttachStdout: true,
      AttachStderr: true,
    });
    // The timers cat prints count from a moment between the exec's start and the end of its output.
    const from = performance.now();
    const stream = await exec.start({ hijack: true, stdin: false });
    const stdout: Buffer[] = [];
    let stderr = '';
    const out = new PassThrough().on('data', (chunk: Buffer) => stdout.push(chunk));
    const err = new PassThrough().on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    this.#docker.modem.demuxStream(stream, out, err);
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', reject);
    });
    const readWindow = { from, to: performance.now() };
    const { ExitCode } = await exec.inspect();
    const output = Buffer.concat(stdout);
    // cat fails on tcp6 alone on a kernel without IPv6; without tcp it has nothing to say.
    if (ExitCode !== 0 && !output.includes('local_address')) {
      throw new Error(`docker exec ${containerId.slice(0, 12)} cat /proc/net/tcp: exit ${ExitCode}: ${stderr.trim() || 'no output'}`);
    }
    const { v4, v6 } = splitProcNetTcpTables(output);
    const sockets: TcpSocket[] = [];
    let parseErrors = parseProcNetTcp(v4, 4, sockets, v4.length, readWindow).skippedLines;
    if (v6) parseErrors += parseProcNetTcp(v6, 6, sockets, v6.length, readWindow).skippedLines;
    return { sockets, parseErrors };
  }
}
