import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { debianKernel, type KernelPackage } from '../support/kernelPackages.js';
import { runInVm } from '../support/vm.js';

// vitest's colour codes in a VM's output.
// eslint-disable-next-line no-control-regex
const ANSI_COLOUR = /\x1b\[[0-9;]*m/g;

/**
 * The kernel matrix: each kernel of matrix.json booted in a throw-away virtual machine over this
 * machine's root, running there what ebpfSource.test.ts proves on this machine's own kernel. A
 * kernel whose verifier or helpers differ fails here, not on a user's host.
 */
const matrix = JSON.parse(readFileSync(new URL('./matrix.json', import.meta.url), 'utf8')) as {
  kernels: (KernelPackage & { name: string })[];
};
const REPO = new URL('../../', import.meta.url).pathname;
const GUEST_TESTS = 'test/kernel/ebpfSource.test.ts';
/** The tests of GUEST_TESTS: each must pass in every guest, none skipped. */
const EXPECTED = (readFileSync(new URL('./ebpfSource.test.ts', import.meta.url), 'utf8').match(/^\s+it\(/gm) ?? []).length;
const results: { kernel: string; release: string; accelerator: string; passed: number; failed: number; seconds: number }[] = [];

describe('the ebpf source on the kernel matrix, each kernel in a virtual machine', () => {
  afterAll(() => {
    // For the README's table and the closing notes: what ran where, and how long it took.
    mkdirSync(new URL('../../test-artifacts/', import.meta.url), { recursive: true });
    writeFileSync(
      new URL('../../test-artifacts/kernel-matrix.json', import.meta.url),
      `${JSON.stringify({ host: release(), results }, null, 2)}\n`,
    );
  });

  for (const { name, ...wanted } of matrix.kernels) {
    it(`${name}: every ebpf test passes`, async () => {
      const kernel = await debianKernel(wanted);
      const run = await runInVm(kernel, `uname -r && npx vitest run ${GUEST_TESTS} --reporter=verbose`, { cwd: REPO, timeoutMs: 540_000 });
      const count = (what: string) => Number(new RegExp(`Tests .*?(\\d+) ${what}`).exec(run.output.replace(ANSI_COLOUR, ''))?.[1] ?? 0);
      const passed = count('passed');
      results.push({
        kernel: name,
        release: kernel.release,
        accelerator: run.accelerator,
        passed,
        failed: count('failed'),
        seconds: Math.round(run.seconds),
      });
      console.log(`${name} (${kernel.release}, ${run.accelerator}): ${passed} of ${EXPECTED} passed in ${run.seconds.toFixed(0)} s`);
      // What the guest's tests measured (the storm's connections and the state changes made up).
      for (const line of run.output.replace(ANSI_COLOUR, '').split('\n'))
        if (/^(storm:|state changes )/.test(line)) console.log(`${name}: ${line}`);
      expect(run.output.split('\n')[0], 'the guest ran the kernel asked for').toBe(kernel.release);
      expect(run.status, run.output.slice(-6000)).toBe(0);
      expect(passed, run.output.slice(-6000)).toBe(EXPECTED);
    }, 600_000);
  }
});
