import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** A kernel to boot: its image, and the modules directory of the same release. */
export interface BootableKernel {
  image: string;
  /** `<root>/lib/modules/<release>` */
  modules: string;
  release: string;
}

export interface VmRun {
  status: number;
  output: string;
  seconds: number;
  accelerator: 'kvm' | 'tcg';
}

/** Modules the guest needs before it can mount its root: virtio-fs (this machine's / shared) and overlayfs on it. */
const BOOT_MODULES = ['virtio_pci', 'virtiofs', 'overlay'];
const VIRTIOFSD = '/usr/lib/qemu/virtiofsd';

/**
 * A stock kernel runs under KVM only where the CPU offers hardware virtualisation (vmx/svm); this
 * machine's /dev/kvm is paravirtual (kvm_pvm) and hangs stock kernels, so they run emulated (TCG).
 */
function accelerator(): 'kvm' | 'tcg' {
  const cpu = readFileSync('/proc/cpuinfo', 'utf8');
  return /\b(vmx|svm)\b/.test(cpu) && existsSync('/dev/kvm') ? 'kvm' : 'tcg';
}

/** The module files `name` needs, dependencies first, decompressed into `into`; their names in load order. */
async function bootModules(kernel: BootableKernel, into: string): Promise<string[]> {
  const base = kernel.modules.slice(0, kernel.modules.indexOf('/lib/modules/')) || '/';
  const order: string[] = [];
  for (const name of BOOT_MODULES) {
    // modprobe says "builtin NAME" for what the kernel has built in, "insmod FILE" for the rest.
    // A kernel package without modules.builtin (7.x) makes modprobe call a built-in module "not
    // found": taken as built in; one truly missing shows as the guest's failure to mount its root.
    const { stdout } = await exec('modprobe', ['-d', base, '-S', kernel.release, '--show-depends', name]).catch((caught: unknown) => {
      const error = caught as Error & { stderr?: string };
      if (/not found in directory/.test(error.stderr ?? '') && !existsSync(join(kernel.modules, 'modules.builtin'))) return { stdout: '' };
      throw error;
    });
    for (const [, file] of stdout.matchAll(/^insmod (\S+)/gm)) {
      const plain = basename(file!).replace(/\.(xz|zst|gz)$/, '');
      if (order.includes(plain)) continue;
      const decompress = file!.endsWith('.xz')
        ? ['xz', '-dc']
        : file!.endsWith('.zst')
          ? ['zstd', '-dqc']
          : file!.endsWith('.gz')
            ? ['gzip', '-dc']
            : ['cat'];
      const { stdout: bytes } = await exec(decompress[0]!, [...decompress.slice(1), file!], {
        encoding: 'buffer',
        maxBuffer: 64 * 1024 * 1024,
      });
      await writeFile(join(into, plain), bytes);
      order.push(plain);
    }
  }
  return order;
}

/** The guest's first process: mount this machine's root read-only under a tmpfs overlay, run the command as root in `cwd`, power off. */
function initScript(kernel: BootableKernel, modules: string[], cwd: string, command: string): string {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
${modules.map((m) => `insmod /modules/${m}`).join('\n')}
mkdir -p /host /out /upper /root
mount -t virtiofs out /out || poweroff -f
mount -t virtiofs host /host -o ro || { echo "no virtiofs root" > /out/output; poweroff -f; }
mount -t tmpfs upper /upper && mkdir /upper/data /upper/work
mount -t overlay root /root -o lowerdir=/host,upperdir=/upper/data,workdir=/upper/work || { echo "no overlay" > /out/output; poweroff -f; }
for fs in "proc /proc" "sysfs /sys" "devtmpfs /dev" "tmpfs /run" "bpf /sys/fs/bpf" "cgroup2 /sys/fs/cgroup" "tracefs /sys/kernel/tracing"; do
  set -- $fs; mount -t $1 $1 /root$2 2>/dev/null
done
mkdir -p /root/dev/pts /root/dev/shm; mount -t devpts devpts /root/dev/pts; mount -t tmpfs shm /root/dev/shm
# The kernel's own modules where modprobe looks for them (veth, sch_netem, …).
mkdir -p /root/lib/modules/${kernel.release} && mount --bind /root${kernel.modules} /root/lib/modules/${kernel.release}
# The kernel loads a module on demand through a helper it runs at the initramfs's root: the real modprobe, in the new root.
printf '#!/bin/busybox sh\nexec /bin/busybox chroot /root /sbin/modprobe "$@"\n' > /bin/modprobe-in-root
chmod 755 /bin/modprobe-in-root; echo /bin/modprobe-in-root > /proc/sys/kernel/modprobe
# (No tmpfs on /tmp: the checkout may be there; the overlay keeps the guest's writes in its memory.)
ip link set lo up
chroot /root /usr/bin/env -i HOME=/root LANG=C.UTF-8 CI=true PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
  /bin/bash -c ${shellQuote(`cd ${shellQuote(cwd)} && ${command}`)} > /out/output 2>&1 < /dev/null
echo $? > /out/status
sync; poweroff -f
`;
}

const shellQuote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/**
 * Boots `kernel` in a throw-away QEMU virtual machine whose root is this machine's (shared read-only
 * by virtio-fs, writes kept in the guest's memory), runs `command` there as root in `cwd`, and
 * returns its status and output. Nothing of the guest's reaches this machine but that output.
 */
export async function runInVm(
  kernel: BootableKernel,
  command: string,
  options: { cwd: string; timeoutMs: number; memoryMb?: number },
): Promise<VmRun> {
  const started = performance.now();
  const work = await mkdtemp(join(tmpdir(), 'outpost-vm-'));
  const daemons: ReturnType<typeof spawn>[] = [];
  try {
    const initramfs = join(work, 'initramfs');
    await mkdir(join(initramfs, 'bin'), { recursive: true });
    await mkdir(join(initramfs, 'modules'));
    for (const dir of ['proc', 'sys', 'dev']) await mkdir(join(initramfs, dir));
    await copyFile('/usr/bin/busybox', join(initramfs, 'bin/busybox'));
    await chmod(join(initramfs, 'bin/busybox'), 0o755);
    const modules = await bootModules(kernel, join(initramfs, 'modules'));
    await writeFile(join(initramfs, 'init'), initScript(kernel, modules, options.cwd, command), { mode: 0o755 });
    await exec('sh', ['-c', `cd ${shellQuote(initramfs)} && find . | cpio -o -H newc --quiet > ../initramfs.cpio`]);

    const out = join(work, 'out');
    await mkdir(out);
    const shares = { host: '/', out };
    for (const [tag, directory] of Object.entries(shares)) {
      const socket = join(work, `${tag}.sock`);
      const daemon = spawn(
        VIRTIOFSD,
        [`--socket-path=${socket}`, '-o', `source=${directory}`, '-o', 'cache=auto', '-o', 'sandbox=chroot'],
        { stdio: 'ignore' },
      );
      daemons.push(daemon);
      for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 25));
      if (!existsSync(socket)) throw new Error(`${VIRTIOFSD} did not start for ${directory}`);
    }

    const accel = accelerator();
    const memory = `${options.memoryMb ?? 2048}M`;
    const args = [
      '-nodefaults',
      '-no-user-config',
      '-display',
      'none',
      '-no-reboot',
      ...(accel === 'kvm'
        ? ['-machine', 'q35,accel=kvm', '-cpu', 'host']
        : ['-machine', 'q35', '-accel', 'tcg,thread=multi', '-cpu', 'max']),
      '-smp',
      '2',
      '-m',
      memory,
      '-object',
      `memory-backend-memfd,id=mem,size=${memory},share=on`,
      '-numa',
      'node,memdev=mem',
      '-kernel',
      kernel.image,
      '-initrd',
      join(work, 'initramfs.cpio'),
      '-append',
      'console=ttyS0 rdinit=/init panic=-1 loglevel=4',
      '-serial',
      `file:${join(work, 'console.log')}`,
      ...Object.keys(shares).flatMap((tag, i) => [
        '-chardev',
        `socket,id=fs${i},path=${join(work, `${tag}.sock`)}`,
        '-device',
        `vhost-user-fs-pci,chardev=fs${i},tag=${tag}`,
      ]),
    ];
    const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let qemuErrors = '';
    qemu.stderr.on('data', (chunk: Buffer) => (qemuErrors += chunk.toString()));
    const timer = setTimeout(() => qemu.kill('SIGKILL'), options.timeoutMs);
    const [code] = (await once(qemu, 'exit')) as [number | null];
    clearTimeout(timer);

    const status = await readFile(join(out, 'status'), 'utf8').catch(() => undefined);
    if (status === undefined) {
      const console = await readFile(join(work, 'console.log'), 'utf8').catch(() => '');
      const why = code === null ? `timed out after ${options.timeoutMs / 1000} s` : `qemu exited with ${code}`;
      throw new Error(
        `the VM of ${kernel.release} gave no status (${why}): ${qemuErrors}\n${console.split('\n').slice(-40).join('\n')}\n${await readFile(join(out, 'output'), 'utf8').catch(() => '')}`,
      );
    }
    return {
      status: Number(status),
      output: await readFile(join(out, 'output'), 'utf8'),
      seconds: (performance.now() - started) / 1000,
      accelerator: accel,
    };
  } finally {
    for (const d of daemons) d.kill();
    await rm(work, { recursive: true, force: true });
  }
}
