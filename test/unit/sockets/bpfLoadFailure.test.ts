import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  effectiveCapabilitiesOf,
  explainBpfLoadFailure,
  missingBpfCapabilities,
  verifierLog,
  verifierVerdict,
  type BpfLoadError,
} from '../../../src/sockets/bpfLoadFailure.js';

/** What load() threw on a real kernel for each way a load fails (captureBpfFailures.mjs). */
interface Captured {
  kernel: string;
  cases: Record<string, { error: BpfLoadError & { loaded?: boolean }; effectiveCapabilities: string }>;
}
const directory = new URL('./fixtures/', import.meta.url);
const captures = readdirSync(directory)
  .filter((f) => /^bpf-failures\..*\.json$/.test(f))
  .map((f) => JSON.parse(readFileSync(new URL(f, directory), 'utf8')) as Captured);
const OBJECT = '/opt/outpost/native/build/outpost.bpf.o';

function explain(capture: Captured, name: string, kernelHasBtf = true): string {
  const c = capture.cases[name]!;
  return explainBpfLoadFailure(c.error, {
    objectPath: OBJECT,
    kernelHasBtf,
    effectiveCapabilities: BigInt(`0x${c.effectiveCapabilities}`),
  });
}

describe('why the kernel did not take the eBPF source, from what load() threw on a real kernel', () => {
  it('has captures', () => {
    expect(captures.length).toBeGreaterThan(0);
  });

  for (const capture of captures) {
    describe(capture.kernel, () => {
      it("a refusal of the verifier: the program and the verifier's own last line, not capabilities", () => {
        const text = explain(capture, 'untrusted-helper');
        expect(text).toContain(
          "the kernel's verifier refused program walked_pointer: R2 type=untrusted_ptr_ expected=ptr_, trusted_ptr_, rcu_ptr_",
        );
        expect(text).not.toMatch(/CAP_/);
        expect(explain(capture, 'wrong-helper')).toMatch(
          /verifier refused program seq_in_tracepoint: program of this type cannot use helper bpf_seq_write#127$/,
        );
      });

      it('a program type the kernel does not allow: refused before verification, said as such', () => {
        const text = explain(capture, 'refused-type');
        expect(text).toContain(
          "this kernel does not allow program element_iterator's program type (refused before verification, with CAP_BPF and CAP_PERFMON held)",
        );
        expect(text).not.toMatch(/verifier refused/);
      });

      it('a type or field this kernel lacks: the CO-RE relocation libbpf could not make', () => {
        expect(explain(capture, 'missing-field')).toContain(
          "CO-RE could not fit program future_field to this kernel's types: failed to resolve CO-RE relocation <byte_off> [6] struct sock___future.sk_field_of_the_future",
        );
      });

      it('missing capabilities: only when the process lacks them, naming which', () => {
        const text = explain(capture, 'no-capabilities');
        expect(text).toMatch(/it needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN: this process lacks CAP_BPF and CAP_PERFMON$/);
        expect(capture.cases['no-capabilities']!.error.code).toBe('EPERM');
      });

      it('no BTF: said before anything else the kernel refused', () => {
        expect(explain(capture, 'untrusted-helper', false)).toMatch(
          /this kernel has no BTF \(\/sys\/kernel\/btf\/vmlinux is missing or empty/,
        );
      });

      it('the object missing: its path', () => {
        expect(explain(capture, 'object-missing')).toMatch(
          /^opening \/opt\/outpost\/native\/build\/outpost\.bpf\.o failed \(open: No such file or directory.*\); is \/opt\/outpost\/native\/build\/outpost\.bpf\.o there\?$/,
        );
      });

      it("outpost's own object loads on this kernel", () => {
        expect(capture.cases.loaded!.error).toEqual({ loaded: true });
      });
    });
  }
});

describe('the parts', () => {
  it('the verifier interrupted by signals at every try: said as that, not as a refusal or capabilities', () => {
    const withIt = captures.filter((c) => 'interrupted' in c.cases);
    expect(withIt.length).toBeGreaterThan(0);
    for (const capture of withIt) {
      expect(capture.cases.interrupted!.error.code).toBe('EAGAIN');
      const text = explain(capture, 'interrupted');
      expect(text).toMatch(/verifier stopped at every try because a signal arrived/);
      expect(text).not.toMatch(/refused|CAP_/);
    }
  });

  it('reads CapEff', () => {
    expect(effectiveCapabilitiesOf('Name:\tnode\nCapPrm:\t000001fffeffffff\nCapEff:\t000000c000080000\n')).toBe(0xc000080000n);
    expect(effectiveCapabilitiesOf('Name:\tnode\n')).toBe(0n);
  });

  it('names the missing capabilities: CAP_SYS_ADMIN stands for both', () => {
    expect(missingBpfCapabilities(0n)).toEqual(['CAP_BPF', 'CAP_PERFMON']);
    expect(missingBpfCapabilities(1n << 39n)).toEqual(['CAP_PERFMON']);
    expect(missingBpfCapabilities((1n << 39n) | (1n << 38n))).toEqual([]);
    expect(missingBpfCapabilities(1n << 21n)).toEqual([]);
  });

  it("takes the verifier's last line, not its statistics", () => {
    const lines = verifierLog(
      'libbpf: x\n-- BEGIN PROG LOAD LOG --\n0: R1=ctx()\nR2 bad\nprocessed 4 insns (limit 1000000)\n-- END PROG LOAD LOG --\n',
    )!;
    expect(lines).toEqual(['0: R1=ctx()', 'R2 bad', 'processed 4 insns (limit 1000000)']);
    expect(verifierVerdict(lines)).toBe('R2 bad');
    expect(verifierLog('libbpf: failed to load object')).toBeUndefined();
  });
});
