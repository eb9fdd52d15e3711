import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const NATIVE = new URL('../../native/', import.meta.url).pathname;

/**
 * outpost's BPF object with one program made unverifiable on every kernel (a map value read without
 * its NULL check): the way to see what outpost does when a kernel refuses that program. Compiled
 * like native/build.mjs does, against this kernel's types (native/build/vmlinux.h, made at npm ci).
 */
export function objectRefusing(program: 'seed_sockets' | 'list_sockets' | 'on_state_change' | 'dns_answers'): string {
  const source = readFileSync(join(NATIVE, 'bpf/outpost.bpf.c'), 'utf8');
  const opening = new RegExp(`(int (BPF_PROG\\()?${program}\\b[^{]*\\{)`);
  if (!opening.test(source)) throw new Error(`no program ${program} in outpost.bpf.c`);
  const refused = source.replace(
    opening,
    '$1\n  __u64 refused_key = 0;\n  if (*(__u64 *)bpf_map_lookup_elem(&sockets, &refused_key) == 12345) return 0;',
  );
  const directory = mkdtempSync(join(tmpdir(), `outpost-refusing-${program}-`));
  writeFileSync(join(directory, 'outpost.bpf.c'), refused);
  const object = join(directory, 'outpost.bpf.o');
  execFileSync('clang', [
    '-g',
    '-O2',
    '-target',
    'bpf',
    '-D__TARGET_ARCH_x86',
    '-I',
    join(NATIVE, 'build'),
    '-c',
    join(directory, 'outpost.bpf.c'),
    '-o',
    object,
  ]);
  return object;
}
