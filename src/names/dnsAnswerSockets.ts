import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import type { Logger } from '../base/log.js';
import { errorMessage } from '../base/errors.js';
import type { NetNamespace } from '../namespaces/netNamespaces.js';
import { isProcessGone } from '../namespaces/netNamespaces.js';
import { CAP_SYS_ADMIN, effectiveCapabilitiesOf } from '../sockets/bpfLoadFailure.js';
import { receivedPackets, type DnsAnswersAddon, type ReceivedPacket } from './dnsAnswersAddon.js';

export const CAP_NET_RAW = 13;

/** Packets taken from one namespace's socket in one collection; the rest wait for the next. */
const MAX_PACKETS_PER_READ = 10_000;

export interface NamespacePackets {
  namespace: NetNamespace;
  packets: ReceivedPacket[];
}

/** What reads the DNS answers the containers' namespaces receive: packet sockets, or the ebpf source's program. */
export interface DnsAnswerReader {
  /** How: the ebpf source's program dns_answers, or a packet socket per namespace. */
  readonly method: 'ebpf' | 'packet_socket';
  /** The packets each container namespace received since the last read. */
  read(namespaces: readonly NetNamespace[]): NamespacePackets[];
  /** Why the answers cannot be read, once that is known; undefined while they are. */
  readonly off: string | undefined;
  /** Packets lost since start, for want of room. */
  readonly dropped: number;
  close(): void;
}

/**
 * Why a socket could not be made, in one sentence, when it is a lack of rights that every
 * namespace would meet (so reading stops); undefined for a cause of this namespace alone.
 */
export function missingRightOf(error: unknown, effectiveCapabilities: bigint): string | undefined {
  const { code, syscall } = error as { code?: string; syscall?: string };
  if (code !== 'EPERM' && code !== 'EACCES') return undefined;
  const lacks = (bit: number) => ((effectiveCapabilities >> BigInt(bit)) & 1n) === 0n;
  if (syscall === 'setns')
    return `entering a container's network namespace needs CAP_SYS_ADMIN${lacks(CAP_SYS_ADMIN) ? ': this process lacks it' : ''}`;
  if (syscall === 'socket') return `a packet socket needs CAP_NET_RAW${lacks(CAP_NET_RAW) ? ': this process lacks it' : ''}`;
  if (syscall === 'open') return "reading another process's ns/net needs root with CAP_SYS_PTRACE";
  return undefined;
}

/**
 * One filtered packet socket per container network namespace (native/dns_answers.c): opened
 * when the namespace is first read, closed once it is gone. The host's namespace is not read:
 * its answers are the host's, not one container's.
 */
export class DnsAnswerSockets implements DnsAnswerReader {
  readonly method = 'packet_socket' as const;
  readonly #addon: DnsAnswersAddon;
  readonly #procfsPath: string;
  readonly #log: Logger;
  readonly #effectiveCapabilities: () => bigint;
  /** namespace id → its socket's fd. */
  readonly #open = new Map<string, number>();
  /** Namespaces whose socket could not be made for a cause of their own: tried once, logged once. */
  readonly #failed = new Set<string>();
  /** Why no socket can be made at all (said once); reading stopped. */
  #off: string | undefined;
  /** Packets the kernel dropped for want of room in a socket's queue, over every socket since start. */
  dropped = 0;

  constructor(options: { addon: DnsAnswersAddon; procfsPath: string; log: Logger; effectiveCapabilities?: () => bigint }) {
    this.#addon = options.addon;
    this.#procfsPath = options.procfsPath;
    this.#log = options.log;
    this.#effectiveCapabilities =
      options.effectiveCapabilities ?? (() => effectiveCapabilitiesOf(readFileSync('/proc/self/status', 'utf8')));
  }

  /** Why the answers cannot be read, once that is known; undefined while they are. */
  get off(): string | undefined {
    return this.#off;
  }

  /** The packets each namespace received since the last read (the first read of a namespace opens its socket). */
  read(namespaces: readonly NetNamespace[]): NamespacePackets[] {
    const present = new Set<string>();
    const read: NamespacePackets[] = [];
    for (const namespace of namespaces) {
      if (namespace.host || this.#off !== undefined) continue;
      present.add(namespace.id);
      const fd = this.#open.get(namespace.id) ?? this.#openFor(namespace);
      if (fd === undefined) continue;
      const { packets, dropped } = this.#addon.drain(fd, MAX_PACKETS_PER_READ);
      this.dropped += dropped;
      read.push({ namespace, packets: receivedPackets(packets) });
    }
    for (const [id, fd] of this.#open) {
      if (present.has(id)) continue;
      this.#addon.close(fd);
      this.#open.delete(id);
    }
    for (const id of this.#failed) if (!present.has(id)) this.#failed.delete(id);
    return read;
  }

  close(): void {
    for (const fd of this.#open.values()) this.#addon.close(fd);
    this.#open.clear();
  }

  #openFor(namespace: NetNamespace): number | undefined {
    if (this.#failed.has(namespace.id)) return undefined;
    const owner = namespace.containers[0];
    if (!owner) return undefined;
    const path = join(this.#procfsPath, String(owner.pid), 'ns', 'net');
    try {
      const fd = this.#addon.open(path);
      this.#open.set(namespace.id, fd);
      return fd;
    } catch (error) {
      if (isProcessGone(error)) return undefined; // exited meanwhile: the next read drops it
      const missing = missingRightOf(error, this.#effectiveCapabilities());
      if (missing !== undefined) {
        this.#off = `${errorMessage(error)}; ${missing}`;
        this.#log.warn({ err: error }, `peers are not named by the DNS answers containers receive: ${missing}`);
        this.close();
        return undefined;
      }
      this.#failed.add(namespace.id);
      this.#log.warn(
        { container: owner.name, err: error },
        "cannot read the DNS answers of this container's namespace; its peers are not named",
      );
      return undefined;
    }
  }
}
