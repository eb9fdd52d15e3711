/**
 * Why the kernel did not take the eBPF source, in one sentence: the program it refused and the
 * verifier's own last line, a program type it does not allow, a type CO-RE could not find, missing
 * BTF, or missing capabilities — the last only when the process really lacks them.
 */

/** What the addon's load() throws (native/bpf_source.c, throw_failure). */
export interface BpfLoadError {
  message: string;
  code?: string;
  /** The step: open, load, attach, seed, mmap, … */
  syscall?: string;
  /** The program libbpf named, when one was the cause. */
  program?: string;
  /** The tail of what libbpf warned while loading (the verifier's log of a refused program among it). */
  log?: string;
}

export interface BpfLoadContext {
  objectPath: string;
  /** /sys/kernel/btf/vmlinux is there and not empty. */
  kernelHasBtf: boolean;
  /** This process's effective capabilities (CapEff of /proc/self/status). */
  effectiveCapabilities: bigint;
}

export const CAP_SYS_ADMIN = 21;
export const CAP_PERFMON = 38;
export const CAP_BPF = 39;

const has = (caps: bigint, bit: number) => (caps >> BigInt(bit)) & 1n;

/** CapEff of a /proc/<pid>/status text. */
export function effectiveCapabilitiesOf(status: string): bigint {
  const hex = /^CapEff:\s*([0-9a-f]+)$/im.exec(status)?.[1];
  return hex === undefined ? 0n : BigInt(`0x${hex}`);
}

/** What loading BPF programs and reading the kernel's memory take (the kernel's bpf_capable, perfmon_capable). */
export function missingBpfCapabilities(caps: bigint): string[] {
  if (has(caps, CAP_SYS_ADMIN)) return [];
  return [...(has(caps, CAP_BPF) ? [] : ['CAP_BPF']), ...(has(caps, CAP_PERFMON) ? [] : ['CAP_PERFMON'])];
}

/** The verifier's log of the refused program: the lines between libbpf's BEGIN and END marks. */
export function verifierLog(log: string): string[] | undefined {
  const begin = log.lastIndexOf('-- BEGIN PROG LOAD LOG --');
  if (begin < 0) return undefined;
  const end = log.indexOf('-- END PROG LOAD LOG --', begin);
  return log
    .slice(log.indexOf('\n', begin) + 1, end < 0 ? undefined : end)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** The verifier's own last word: its last line but the statistics it ends with. */
export function verifierVerdict(lines: readonly string[]): string | undefined {
  const statistics = /^(processed \d+ insns|verification time|stack depth|max_states_per_insn|Validating |Func#|mark_precise)/;
  return lines.findLast((line) => !statistics.test(line));
}

/** libbpf's line about a CO-RE relocation it could not make (a type or field this kernel lacks). */
function relocationFailure(log: string): string | undefined {
  const lines = log.split('\n');
  const line =
    lines.find((l) => /failed to resolve CO-RE relocation/.test(l)) ??
    lines.find((l) => /relo #\d+:.*(failed|not found)|failed to find .*BTF/.test(l));
  return line?.replace(/^libbpf:\s*/, '').trim();
}

export function explainBpfLoadFailure(error: BpfLoadError, context: BpfLoadContext): string {
  const step = error.syscall ?? 'load';
  const program = error.program ? `program ${error.program}` : 'the object';
  const what = `${step === 'open' ? 'opening' : step === 'attach' ? 'attaching' : 'loading'} ${context.objectPath} failed (${error.message})`;
  if (error.code === 'ENOENT' && step === 'open') return `${what}; is ${context.objectPath} there?`;
  if (!context.kernelHasBtf)
    return `${what}; this kernel has no BTF (/sys/kernel/btf/vmlinux is missing or empty; it comes with CONFIG_DEBUG_INFO_BTF)`;
  const missing = missingBpfCapabilities(context.effectiveCapabilities);
  if ((error.code === 'EPERM' || error.code === 'EACCES') && missing.length > 0) {
    return `${what}; it needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN: this process lacks ${missing.join(' and ')}`;
  }
  if (step === 'load' && error.code === 'EAGAIN') {
    // The addon tries again a few times first (native/bpf_source.c, open_and_load).
    return `${what}; the kernel's verifier stopped at every try because a signal arrived while it worked (a profiler's SIGPROF, say): not a refusal, it loads without them`;
  }
  const relocation = relocationFailure(error.log ?? '');
  if (relocation) return `${what}; CO-RE could not fit ${program} to this kernel's types: ${relocation}`;
  const lines = verifierLog(error.log ?? '');
  const verdict = lines && verifierVerdict(lines);
  if (verdict && !/^processed 0 insns/.test(lines.at(-1) ?? '')) return `${what}; the kernel's verifier refused ${program}: ${verdict}`;
  if (step === 'load' && (error.code === 'EPERM' || error.code === 'EINVAL' || error.code === 'EOPNOTSUPP')) {
    // Refused before verification, with the capabilities held: the program type, not the privileges.
    return `${what}; this kernel does not allow ${program}'s program type (refused before verification, with CAP_BPF and CAP_PERFMON held)`;
  }
  if (step === 'attach') return `${what}; the kernel would not attach ${program}`;
  return `${what}; it needs a kernel with BTF, BPF iterators and tp_btf (those tested: docs/kernels.md)`;
}
