import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../errors.js';
import { BPF_RECORD_SIZE } from './bpfRecords.js';

/** A loaded and attached BPF object (native/bpf_source.c). */
export type BpfHandle = object & { readonly __brand: 'BpfHandle' };

/** The eBPF source's addon, built by node-gyp at install when libbpf's headers are present. */
export interface BpfAddon {
  /** Opens, loads and attaches the object; throws an Error with code (EPERM, ENOENT, …) and syscall (the step). */
  load(objectPath: string): BpfHandle;
  /** Every TCP socket a file holds, in every namespace: one read of the task_file iterator. */
  walk(handle: BpfHandle): Buffer;
  /** The tracked sockets; timewait entries begun before `expireNs` (CLOCK_MONOTONIC) are deleted instead. */
  tracked(handle: BpfHandle, expireNs: number): Buffer;
  /** Connection events since the last call. */
  drainEvents(handle: BpfHandle): Buffer;
  counters(handle: BpfHandle): { trackedFull: number; eventsLost: number; eventsDropped: number };
  /** CLOCK_MONOTONIC now, in nanoseconds: the clock of the timewait entries. */
  monotonicNs(): number;
  close(handle: BpfHandle): void;
  recordSize: number;
}

const native = (path: string) => fileURLToPath(new URL(`../../native/${path}`, import.meta.url));

// The same from src/sockets (tests) and dist/sockets (the program).
export const DEFAULT_BPF_ADDON_PATH = native('build/Release/bpf_source.node');

/** The object compiled at install against this kernel's BTF, else the prebuilt one (CO-RE: either loads). */
export function defaultBpfObjectPath(): string {
  const built = native('build/outpost.bpf.o');
  return existsSync(built) ? built : native('bpf/outpost.bpf.o');
}

/** The addon, or why it cannot be used (not built, built for another Node, another record layout). */
export function loadBpfAddon(path: string = DEFAULT_BPF_ADDON_PATH): BpfAddon | Error {
  try {
    const addon = createRequire(import.meta.url)(path) as Partial<BpfAddon>;
    if (typeof addon.load !== 'function' || addon.recordSize !== BPF_RECORD_SIZE) {
      return new Error(`${path} is not the addon this version expects (record size ${String(addon.recordSize)}, want ${BPF_RECORD_SIZE})`);
    }
    return addon as BpfAddon;
  } catch (error) {
    return new Error(`cannot load ${path}: ${errorMessage(error).split('\n')[0]}`);
  }
}
