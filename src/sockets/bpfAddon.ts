import { existsSync } from 'node:fs';
import { BPF_RECORD_SIZE } from './bpfRecords.js';
import { loadNativeAddon, nativePath } from '../base/nativeAddon.js';

/** A loaded and attached BPF object (native/bpf_source.c). */
export type BpfHandle = object & { readonly __brand: 'BpfHandle' };

/** A program of the object: whether it runs, and why not (an optional one the kernel refused). */
export interface BpfProgramState {
  name: string;
  loaded: boolean;
  reason: string;
  /** Its errno's name (EACCES, EPERM, …); "" when it runs. */
  code: string;
  /** The tail of what libbpf said of it (the verifier's log among it). */
  log: string;
}

/** The eBPF source's addon, built by node-gyp at install when libbpf's headers are present. */
export interface BpfAddon {
  /**
   * Opens, loads and attaches the object, then gives every TCP socket a file holds its entry (one
   * walk of every open file), leaving out an optional program the kernel refuses; throws an Error
   * with code (EPERM, ENOENT, …), syscall (the step), program and log (bpfLoadFailure.ts reads them).
   */
  load(objectPath: string): BpfHandle;
  programs(handle: BpfHandle): BpfProgramState[];
  /** Every TCP socket known (held at load, or that changed state since), in every namespace, as it is now. */
  sockets(handle: BpfHandle): Buffer;
  /** Events since the last call: connections established, connects failed, sockets that entered TIME_WAIT. */
  drainEvents(handle: BpfHandle): Buffer;
  /**
   * The DNS packets received since the last call, in every namespace (program dns_answers): records
   * as native/dns_answers.c's drain() gives them, with the namespace's inode in place of its zero.
   */
  drainDns(handle: BpfHandle): Buffer;
  counters(handle: BpfHandle): {
    trackedFull: number;
    eventsLost: number;
    eventsDropped: number;
    dnsLost: number;
    dnsDropped: number;
    /** State changes no program handled: on_state_change skipped (its recursion_misses) less those made up. */
    stateChangesSkipped: number;
    /** State changes on_state_change was skipped for that on_state_change_skipped handled. */
    stateChangesMadeUp: number;
  };
  /** CLOCK_MONOTONIC now, in nanoseconds: the clock of the TIME_WAIT events. */
  monotonicNs(): number;
  close(handle: BpfHandle): void;
  recordSize: number;
}

export const DEFAULT_BPF_ADDON_PATH = nativePath('build/Release/bpf_source.node');

/** The object compiled at install against this kernel's BTF, else the prebuilt one (CO-RE: either loads). */
export function defaultBpfObjectPath(): string {
  const built = nativePath('build/outpost.bpf.o');
  return existsSync(built) ? built : nativePath('bpf/outpost.bpf.o');
}

export function loadBpfAddon(path: string = DEFAULT_BPF_ADDON_PATH): BpfAddon | Error {
  return loadNativeAddon<BpfAddon>(path, 'load', BPF_RECORD_SIZE);
}
