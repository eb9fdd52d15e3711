import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { errorMessage } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { ExecSocketSource } from './execSource.js';
import { NetlinkSocketSource } from './netlinkSource.js';
import { ProcfsSocketSource } from './procfsSource.js';
import { DEFAULT_ADDON_PATH, loadSockDiagAddon } from './sockDiagAddon.js';
import { DEFAULT_BPF_ADDON_PATH, defaultBpfObjectPath, loadBpfAddon } from './bpfAddon.js';
import { EbpfSocketSource } from './ebpfSource.js';
import { effectiveCapabilitiesOf, explainBpfLoadFailure, type BpfLoadContext, type BpfLoadError } from './bpfLoadFailure.js';
import { ALL_TCP_STATES_MASK } from './sockDiagRecords.js';
import type { SocketSource } from './socketSource.js';

export const SOURCE_CHOICES = ['auto', 'ebpf', 'netlink', 'procfs', 'exec'] as const;
export type SourceChoice = (typeof SOURCE_CHOICES)[number];

export interface SourceChoiceOptions {
  choice: SourceChoice;
  procfsPath: string;
  docker: Docker;
  log: Logger;
  /** Where the sock_diag addon is; tests point it elsewhere. */
  addonPath?: string;
  /** Where the eBPF source's addon and BPF object are; tests point them elsewhere. */
  bpfAddonPath?: string;
  bpfObjectPath?: string;
}

/**
 * The socket source `--collector.source` asks for, else the next one down: ebpf (`auto` and
 * `ebpf` try it first: the addon loads and the kernel takes the programs, which needs CAP_BPF and
 * CAP_PERFMON, or CAP_SYS_ADMIN, and BTF), then netlink (the sock_diag addon loads and this
 * process may enter a namespace, which needs CAP_SYS_ADMIN), then procfs. Each step down is said
 * in one log line with the reason: info for `auto`, a warning when the source was asked for.
 */
export async function chooseSocketSource(options: SourceChoiceOptions): Promise<SocketSource> {
  const { choice, procfsPath, docker, log } = options;
  if (choice === 'procfs') return new ProcfsSocketSource({ procfsPath });
  if (choice === 'exec') return new ExecSocketSource({ docker });
  const level = (asked: SourceChoice) => (choice === asked ? 'warn' : 'info');

  if (choice === 'auto' || choice === 'ebpf') {
    const ebpf = loadEbpfSource(options);
    if (!(ebpf instanceof Error)) {
      for (const p of ebpf.programs.filter((p) => !p.loaded)) {
        const why = explainBpfLoadFailure(
          { message: p.reason, code: p.code, syscall: p.reason.split(':')[0], program: p.name, log: p.log },
          loadContext(objectPathOf(options)),
        );
        log.warn(
          { source: 'ebpf', program: p.name },
          `eBPF program ${p.name} left out: ${why}; ${LOST_WITHOUT[p.name] ?? 'what it sees is not seen'}`,
        );
      }
      if (!inHostPidNamespace(options.procfsPath) && ebpf.programs.some((p) => p.name === 'seed_sockets' && p.loaded)) {
        log.warn(
          { source: 'ebpf', program: 'seed_sockets' },
          `eBPF program seed_sockets saw only the processes of outpost's own PID namespace, not the host's; ${LOST_WITHOUT.seed_sockets} (in a container, --pid=host lets it see them)`,
        );
      }
      return ebpf;
    }
    log[level('ebpf')]({ requested: choice, source: 'netlink' }, `eBPF socket source unavailable: ${ebpf.message}; trying netlink instead`);
  }

  const addon = loadSockDiagAddon(options.addonPath ?? DEFAULT_ADDON_PATH);
  let reason: string;
  if (addon instanceof Error) {
    reason = `the sock_diag addon is not usable (${addon.message}; rebuild it with "npm rebuild" or "npm ci")`;
  } else {
    try {
      await addon.readNamespace('/proc/self/ns/net', ALL_TCP_STATES_MASK);
      return new NetlinkSocketSource({ addon, procfsPath });
    } catch (error) {
      reason = `entering a network namespace failed (${errorMessage(error)}; it needs CAP_SYS_ADMIN)`;
    }
  }
  log[choice === 'netlink' || choice === 'ebpf' ? 'warn' : 'info'](
    { requested: choice, source: 'procfs' },
    `netlink socket source unavailable: ${reason}; reading procfs instead`,
  );
  return new ProcfsSocketSource({ procfsPath });
}

/** What the source cannot see without an optional program (native/bpf_source.c, optional_programs). */
const LOST_WITHOUT: Record<string, string> = {
  seed_sockets: 'sockets opened before outpost started are listed once they change state',
  dns_answers: 'DNS answers are read with a packet socket in each namespace instead, which needs CAP_SYS_ADMIN and CAP_NET_RAW',
};

/** The kernel's own types, which CO-RE relocates the object against. */
const KERNEL_BTF = '/sys/kernel/btf/vmlinux';

function hasKernelBtf(): boolean {
  try {
    return statSync(KERNEL_BTF).size > 0;
  } catch {
    return false;
  }
}

function loadContext(objectPath: string): BpfLoadContext {
  let status = '';
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    // no /proc: no capabilities known, said as missing
  }
  return { objectPath, kernelHasBtf: hasKernelBtf(), effectiveCapabilities: effectiveCapabilitiesOf(status) };
}

/**
 * This process is in the PID namespace of --procfs.path (the host's): seen from there it has one pid
 * only (NSpid of its own status), where a process in a child namespace has one per level. True
 * when that cannot be read.
 */
function inHostPidNamespace(procfsPath: string): boolean {
  try {
    const pids = /^NSpid:\s*(.*)$/m
      .exec(readFileSync(join(procfsPath, 'self', 'status'), 'utf8'))?.[1]
      ?.trim()
      .split(/\s+/);
    return pids === undefined || pids.length === 1;
  } catch {
    return true;
  }
}

const objectPathOf = (options: SourceChoiceOptions) => options.bpfObjectPath ?? defaultBpfObjectPath();

/** The eBPF source, loaded and attached, or why not (the addon, the object, the kernel's refusal). */
function loadEbpfSource(options: SourceChoiceOptions): EbpfSocketSource | Error {
  const addon = loadBpfAddon(options.bpfAddonPath ?? DEFAULT_BPF_ADDON_PATH);
  if (addon instanceof Error)
    return new Error(`the eBPF addon is not usable (${addon.message}; it is built at "npm ci" when libbpf-dev is installed)`);
  const objectPath = objectPathOf(options);
  try {
    return new EbpfSocketSource({
      addon,
      handle: addon.load(objectPath),
      procfsPath: options.procfsPath,
      inHostPidNamespace: inHostPidNamespace(options.procfsPath),
    });
  } catch (error) {
    return new Error(explainBpfLoadFailure(error as BpfLoadError, loadContext(objectPath)));
  }
}
