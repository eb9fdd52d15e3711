// Builds the native parts at install (npm's "install" script). A failed build is not an install
// failure: outpost then falls back, and says so at start.
// - the sock_diag addon (netlink source): needs python3, make and a C compiler;
// - the eBPF source: its addon needs libbpf's headers (libbpf-dev); its BPF object is compiled
//   when clang and bpftool are present (CO-RE, against this kernel's BTF), else the prebuilt
//   native/bpf/outpost.bpf.o is loaded.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const directory = dirname(fileURLToPath(import.meta.url));
const BTF = '/sys/kernel/btf/vmlinux';

function found(command) {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0;
}

function buildBpfObject() {
  if (!found('clang') || !existsSync(BTF) || spawnSync('bpftool', ['version'], { stdio: 'ignore' }).status !== 0) {
    return 'clang, bpftool or the kernel BTF is missing; the prebuilt native/bpf/outpost.bpf.o is used';
  }
  const out = join(directory, 'build');
  mkdirSync(out, { recursive: true });
  const types = spawnSync('bpftool', ['btf', 'dump', 'file', BTF, 'format', 'c'], { maxBuffer: 256 * 1024 * 1024 });
  if (types.status !== 0) return `bpftool btf dump failed: ${types.stderr}`;
  writeFileSync(join(out, 'vmlinux.h'), types.stdout);
  const arch = { x64: 'x86', arm64: 'arm64' }[process.arch] ?? process.arch;
  const clang = spawnSync(
    'clang',
    [
      '-g',
      '-O2',
      '-target',
      'bpf',
      `-D__TARGET_ARCH_${arch}`,
      '-I',
      out,
      '-c',
      join(directory, 'bpf', 'outpost.bpf.c'),
      '-o',
      join(out, 'outpost.bpf.o'),
    ],
    { stdio: 'inherit' },
  );
  if (clang.status !== 0) return `clang exited with ${clang.status}; the prebuilt native/bpf/outpost.bpf.o is used`;
  // DWARF is for debuggers; libbpf needs only the BTF sections, which stay (700 kB → 95 kB).
  if (found('llvm-strip')) spawnSync('llvm-strip', ['-g', join(out, 'outpost.bpf.o')], { stdio: 'inherit' });
  return undefined;
}

const withBpf = existsSync('/usr/include/bpf/libbpf.h');
const args = ['rebuild', '--directory', directory, `--with_bpf=${withBpf ? 1 : 0}`];
// Use the headers installed next to this node (e.g. /usr/include/node) rather than a download.
const prefix = dirname(dirname(process.execPath));
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
const result = spawnSync('node-gyp', args, { stdio: 'inherit' });
if (result.status !== 0) {
  const why = result.error ? result.error.message : `node-gyp exited with ${result.status}`;
  console.warn(
    `outpost: the native addons did not build (${why}); they need python3, make and a C compiler. outpost will read procfs instead of netlink or eBPF.`,
  );
}
if (!withBpf) console.warn('outpost: libbpf-dev is not installed; the eBPF socket source is not built (netlink is used instead).');
const object = buildBpfObject();
if (object) console.warn(`outpost: the BPF object was not compiled: ${object}.`);
