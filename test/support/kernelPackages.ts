import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BootableKernel } from './vm.js';

const exec = promisify(execFile);

/** Where unpacked kernel packages are kept between runs (one download per kernel per machine). */
export const KERNEL_CACHE = process.env.OUTPOST_KERNEL_CACHE ?? '/var/cache/outpost-kernels';

/** The package `latest` depends on: the newest kernel of its line (e.g. linux-image-6.1.0-57-cloud-amd64). */
async function resolve(latest: string): Promise<string> {
  const depends = async () => (await exec('apt-cache', ['depends', latest])).stdout;
  let text = await depends().catch(() => '');
  if (!/Depends: linux-image-\d/.test(text)) {
    await exec('apt-get', ['update', '-qq']); // a machine that never read the package lists
    text = await depends();
  }
  const name = /Depends: (linux-image-\d\S*)/.exec(text)?.[1];
  if (!name) throw new Error(`${latest} names no kernel package (apt-cache depends: ${text.trim()})`);
  return name;
}

/**
 * The newest kernel of the Debian package line `latest`, downloaded and unpacked once into
 * KERNEL_CACHE (apt-get download: the machine's own package sources), with its modules indexed.
 */
export async function debianKernel(latest: string): Promise<BootableKernel> {
  const pkg = await resolve(latest);
  const root = join(KERNEL_CACHE, pkg);
  if (!existsSync(join(root, '.complete'))) {
    const partial = `${root}.partial`;
    await rm(partial, { recursive: true, force: true });
    await mkdir(partial, { recursive: true });
    await exec('apt-get', ['download', '-qq', pkg], { cwd: partial });
    const deb = readdirSync(partial).find((f) => f.endsWith('.deb'))!;
    await exec('dpkg-deb', ['-x', join(partial, deb), partial]);
    await rm(join(partial, deb));
    const { release, modules } = modulesOf(partial);
    // Newer packages ship no modules.dep: made here, as the package's own scripts would at install.
    if (!existsSync(join(modules, 'modules.dep'))) await exec('depmod', ['-b', modules.slice(0, modules.indexOf('/lib/modules/')), release]);
    await exec('touch', [join(partial, '.complete')]);
    await rm(root, { recursive: true, force: true });
    await rename(partial, root);
  }
  const { release, modules } = modulesOf(root);
  return { image: join(root, 'boot', `vmlinuz-${release}`), modules, release };
}

/** The release and modules of an unpacked kernel package (lib/modules, or usr/lib/modules since trixie). */
function modulesOf(root: string): { release: string; modules: string } {
  const parent = [join(root, 'lib/modules'), join(root, 'usr/lib/modules')].find((d) => existsSync(d));
  if (!parent) throw new Error(`no lib/modules in ${root}`);
  const release = readdirSync(parent)[0]!;
  return { release, modules: join(parent, release) };
}
