import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { aptOptions, unpackedPackages } from './debianArchive.js';
import type { BootableKernel } from './vm.js';

const exec = promisify(execFile);

/** Where a kernel comes from: a package of this machine's own sources, or of another suite of the same archive. */
export interface KernelPackage {
  /** A package that depends on the newest kernel of its line (linux-image-cloud-amd64), or a kernel package itself. */
  package: string;
  /** Another suite of the archive this machine's sources name (trixie-backports); none: this machine's own. */
  suite?: string;
}

/** The kernel package `wanted` is, or depends on (the newest of its line, e.g. linux-image-6.1.0-57-cloud-amd64). */
async function resolve({ package: wanted, suite }: KernelPackage): Promise<{ name: string; apt: string[] }> {
  const apt = await aptOptions(suite);
  if (/^linux-image-\d+\.\d+[.-]\d/.test(wanted)) return { name: wanted, apt }; // a kernel itself: 6.1.0-57-…, 6.18.15+…
  const depends = async () => (await exec('apt-cache', [...apt, 'depends', wanted])).stdout;
  let text = await depends().catch(() => '');
  if (!/Depends: linux-image-\d/.test(text)) {
    await exec('apt-get', [...apt, 'update', '-qq']); // a machine that never read the package lists
    text = await depends();
  }
  const name = /Depends: (linux-image-\d\S*)/.exec(text)?.[1];
  if (!name) throw new Error(`${wanted} names no kernel package (apt-cache depends: ${text.trim()})`);
  return { name, apt };
}

/**
 * A Debian kernel, downloaded and unpacked once into PACKAGE_CACHE (apt-get download, from this
 * machine's archive), with its modules indexed.
 */
export async function debianKernel(wanted: KernelPackage): Promise<BootableKernel> {
  const { name: pkg, apt } = await resolve(wanted);
  // Since 7.x the image is split: the kernel and its modules come in packages of their own.
  const { stdout: depends } = await exec('apt-cache', [...apt, 'depends', pkg]);
  const parts = [...depends.matchAll(/Depends: (linux-(?:binary|modules)-\d\S*)/g)].map((m) => m[1]!);
  const root = await unpackedPackages(pkg, [pkg, ...parts], apt, async (partial) => {
    const { release, modules } = modulesOf(partial);
    // Newer packages ship no modules.dep: made here, as the package's own scripts would at install.
    if (!existsSync(join(modules, 'modules.dep')))
      await exec('depmod', ['-b', modules.slice(0, modules.indexOf('/lib/modules/')), release]);
  });
  const { release, modules } = modulesOf(root);
  const image = [join(root, 'boot', `vmlinuz-${release}`), join(modules, 'vmlinuz')].find((f) => existsSync(f));
  if (!image) throw new Error(`no vmlinuz-${release} in ${root}`);
  return { image, modules, release };
}

/** The release and modules of an unpacked kernel package (lib/modules, or usr/lib/modules since trixie). */
function modulesOf(root: string): { release: string; modules: string } {
  const parent = [join(root, 'lib/modules'), join(root, 'usr/lib/modules')].find((d) => existsSync(d));
  if (!parent) throw new Error(`no lib/modules in ${root}`);
  const release = readdirSync(parent)[0]!;
  return { release, modules: join(parent, release) };
}
