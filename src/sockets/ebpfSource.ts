import { readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Container } from '../inventory/container.js';
import { NamespaceUnreadableError, errorMessage } from '../base/errors.js';
import { isSharedNamespace, type NetNamespace } from '../namespaces/netNamespaces.js';
import type { BpfAddon, BpfHandle, BpfProgramState } from './bpfAddon.js';
import { decodeBpfRecords, TCP_STATE_CODE, type BpfSocket } from './bpfRecords.js';
import { containerIdOfCgroup } from './socketOwners.js';
import { TimeWaitSockets } from './timeWaitSockets.js';
import { tcpStateFromCode } from './tcpSocket.js';
import type { NamespaceSockets, SocketReadResult, SocketSource, SourceCapability, SourceLosses } from './socketSource.js';

export interface EbpfSourceOptions {
  addon: BpfAddon;
  handle: BpfHandle;
  /** Where the holders' /proc/<pid>/cgroup are, to tell their containers in shared namespaces. */
  procfsPath: string;
  /**
   * Whether outpost is in the host's PID namespace: the seeding walk visits the processes of its
   * own only (in a container without --pid=host, none of the host's), so it saw no socket of before.
   */
  inHostPidNamespace?: boolean;
}

/** "net:[4026532185]" (or "pid:[…]") → 4026532185. */
export function netNamespaceInode(id: string): number {
  return Number(/\[(\d+)\]/.exec(id)?.[1] ?? Number.NaN);
}

/** What each of the object's programs lets the source see (native/bpf/outpost.bpf.c). */
const CAPABILITIES_OF_PROGRAM: Record<string, readonly SourceCapability[]> = {
  list_sockets: ['sockets', 'socket_cookies', 'socket_processes', 'socket_figures'],
  on_state_change: [
    'connection_events',
    'connect_failures',
    'time_wait_events',
    'closed_figures',
    'connect_times',
    'connect_failure_reasons',
  ],
  seed_sockets: ['sockets_opened_before_start'],
};

/** What a source with these programs running can see. */
export function ebpfCapabilities(programs: readonly Pick<BpfProgramState, 'name' | 'loaded'>[]): SourceCapability[] {
  return programs.filter((p) => p.loaded).flatMap((p) => CAPABILITIES_OF_PROGRAM[p.name] ?? []);
}

/** The DNS packets of the ebpf source's program dns_answers (BpfAddon.drainDns). */
export interface EbpfDnsPackets {
  /** The packets received since the last call, every namespace's. */
  drain(): Buffer;
  /** Packets lost since start: the ring buffer or the queue behind it was full. */
  lost(): number;
}

/** One namespace's share of a read, before its holders are named. */
interface NamespaceShare {
  namespace: NetNamespace;
  sockets: BpfSocket[];
  passed: BpfSocket[];
  failedConnects: BpfSocket[];
  closed: BpfSocket[];
}

/**
 * Every namespace in one read (native/bpf/outpost.bpf.c): every TCP socket known — held when the
 * source loaded, or that changed state since — with its holder (for an accepted socket, its
 * listener's); and from the event stream, the connections established or failed since the last
 * read, so that none is missed however short, and the sockets that entered TIME_WAIT. Needs
 * CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) once, to load; reads need nothing more.
 */
export class EbpfSocketSource implements SocketSource {
  readonly name = 'ebpf' as const;
  readonly capabilities: readonly SourceCapability[];
  /** The programs of the object, and why one is not running. */
  readonly programs: readonly BpfProgramState[];
  readonly #options: EbpfSourceOptions;
  readonly #timeWaits = new TimeWaitSockets();
  /** Events drained after the last listing, for this read. */
  #carried: BpfSocket[] = [];
  #closed = false;

  constructor(options: EbpfSourceOptions) {
    this.#options = options;
    this.programs = options.addon.programs(options.handle);
    const seen = ebpfCapabilities(this.programs);
    this.capabilities = options.inHostPidNamespace === false ? seen.filter((c) => c !== 'sockets_opened_before_start') : seen;
  }

  /**
   * The DNS answers the object's program dns_answers reads in every namespace, while it runs
   * (src/names/ parses them); undefined where the kernel left it out.
   */
  dnsAnswers(): EbpfDnsPackets | undefined {
    if (!this.programs.some((p) => p.name === 'dns_answers' && p.loaded)) return undefined;
    const { addon, handle } = this.#options;
    return {
      drain: () => addon.drainDns(handle),
      lost: () => {
        const { dnsLost, dnsDropped } = addon.counters(handle);
        return dnsLost + dnsDropped;
      },
    };
  }

  losses(): SourceLosses {
    const { eventsLost, eventsDropped, trackedFull, stateChangesSkipped } = this.#options.addon.counters(this.#options.handle);
    return {
      ring_buffer_full: eventsLost,
      queue_full: eventsDropped,
      tracked_map_full: trackedFull,
      state_changes_skipped: stateChangesSkipped,
    };
  }

  async read(namespaces: readonly NetNamespace[]): Promise<SocketReadResult> {
    const { addon, handle } = this.#options;
    let drained, known, late;
    try {
      // Events first: a connection established after the drain is in the listing or the next drain.
      drained = decodeBpfRecords(addon.drainEvents(handle));
      known = decodeBpfRecords(addon.sockets(handle));
      // And after: a socket that entered TIME_WAIT during the listing is not in it, but is listed by the kernel.
      late = decodeBpfRecords(addon.drainEvents(handle));
    } catch (error) {
      const failure = new NamespaceUnreadableError(`the eBPF read failed: ${errorMessage(error)}`, error);
      return { read: [], failed: namespaces.map((namespace) => ({ namespace, error: failure })) };
    }
    const isTimeWait = (e: BpfSocket) => e.sinceNs > 0;
    const events = [...this.#carried, ...drained.sockets];
    // The late events other than TIME_WAIT belong to the next read, as if drained then.
    this.#carried = late.sockets.filter((e) => !isTimeWait(e));
    // A socket in TIME_WAIT is known from its event only (the kernel gives it no storage), kept until it ends.
    const timeWaits = this.#timeWaits.update([...events, ...late.sockets].filter(isTimeWait), known.sockets, addon.monotonicNs());

    const shares = new Map<number, NamespaceShare>();
    for (const namespace of namespaces) {
      shares.set(netNamespaceInode(namespace.id), { namespace, sockets: [], passed: [], failedConnects: [], closed: [] });
    }
    const present = new Set<number>();
    // Listed while still opening (the read came before the handshake's end): not yet a connection.
    const opening = new Set<number>();
    for (const s of [...known.sockets, ...timeWaits]) {
      present.add(s.socket.cookie);
      if (s.socket.state === 'syn_sent' || s.socket.state === 'syn_recv') opening.add(s.socket.cookie);
      shares.get(s.netns)?.sockets.push(s);
    }
    for (const e of events) {
      const share = shares.get(e.netns);
      if (!share) continue;
      const counted = present.has(e.socket.cookie) && !opening.has(e.socket.cookie);
      if (e.stateCode === TCP_STATE_CODE.established && !counted) share.passed.push(e);
      else if (e.stateCode === TCP_STATE_CODE.close && e.oldStateCode === TCP_STATE_CODE.synSent)
        share.failedConnects.push({ ...e, socket: { ...e.socket, state: 'syn_sent', connectError: e.error } });
      else if (e.stateCode === TCP_STATE_CODE.close && !isTimeWait(e)) {
        // Closed from the state it left: its last figures count, once.
        share.closed.push({ ...e, socket: { ...e.socket, state: tcpStateFromCode(e.oldStateCode) ?? 'established' } });
      }
    }

    const holders = new ContainerOfProcess(this.#options.procfsPath);
    const result: Required<SocketReadResult> = { read: [], failed: [], passed: [], failedConnects: [], closed: [] };
    for (const share of shares.values()) {
      const owned = (sockets: BpfSocket[]) => this.#owned(share.namespace, sockets, holders);
      const [read, passed, failedConnects, closed] = await Promise.all([
        owned(share.sockets),
        owned(share.passed),
        owned(share.failedConnects),
        owned(share.closed),
      ]);
      result.read.push(read);
      if (passed.sockets.length > 0) result.passed.push(passed);
      if (failedConnects.sockets.length > 0) result.failedConnects.push(failedConnects);
      if (closed.sockets.length > 0) result.closed.push(closed);
    }
    const skipped = drained.skippedRecords + known.skippedRecords + late.skippedRecords;
    if (result.read[0]) result.read[0].parseErrors += skipped;
    return result;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#options.addon.close(this.#options.handle);
  }

  /** The sockets of one namespace, and in a shared one who holds them, by inode and cookie. */
  async #owned(namespace: NetNamespace, sockets: BpfSocket[], holders: ContainerOfProcess): Promise<NamespaceSockets> {
    const read: NamespaceSockets = { namespace, sockets: sockets.map((s) => s.socket), parseErrors: 0 };
    if (!isSharedNamespace(namespace)) return read;
    read.owners = new Map();
    read.ownersByCookie = new Map();
    for (const s of sockets) {
      const id = await holders.containerOf(s, namespace.containers);
      if (id === undefined) continue;
      if (s.socket.inode !== 0) read.owners.set(s.socket.inode, id);
      // 0: a socket of before the load that nothing asked a cookie for yet; its inode names it.
      if (s.socket.cookie !== 0) read.ownersByCookie.set(s.socket.cookie, id);
    }
    return read;
  }
}

/**
 * The container of a holder: by its pid namespace (each container's main process has its own;
 * known even after a short-lived process exited), else by its cgroup. Read once per read.
 */
class ContainerOfProcess {
  readonly #procfsPath: string;
  readonly #cgroups = new Map<number, Promise<string | undefined>>();
  readonly #pidNamespaces = new Map<number, Promise<number | undefined>>();

  constructor(procfsPath: string) {
    this.#procfsPath = procfsPath;
  }

  async containerOf(holder: Pick<BpfSocket, 'holder' | 'pidNamespace'>, containers: readonly Container[]): Promise<string | undefined> {
    if (holder.pidNamespace !== 0) {
      const namespaces = await Promise.all(containers.map((c) => this.#pidNamespaceOf(c.pid)));
      const owners = containers.filter((_c, i) => namespaces[i] === holder.pidNamespace);
      if (owners.length === 1) return owners[0]?.id; // several: containers sharing a pid namespace (--pid container:)
    }
    if (holder.holder === 0) return undefined;
    let cgroup = this.#cgroups.get(holder.holder);
    if (!cgroup) {
      cgroup = readFile(join(this.#procfsPath, String(holder.holder), 'cgroup'), 'utf8').catch(() => undefined);
      this.#cgroups.set(holder.holder, cgroup);
    }
    const text = await cgroup;
    return text === undefined ? undefined : containerIdOfCgroup(text, new Set(containers.map((c) => c.id)));
  }

  #pidNamespaceOf(pid: number): Promise<number | undefined> {
    let namespace = this.#pidNamespaces.get(pid);
    if (!namespace) {
      namespace = readlink(join(this.#procfsPath, String(pid), 'ns', 'pid')).then(netNamespaceInode, () => undefined);
      this.#pidNamespaces.set(pid, namespace);
    }
    return namespace;
  }
}
