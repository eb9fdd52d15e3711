import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** Where unpacked packages are kept between runs (one download per package per machine). */
export const PACKAGE_CACHE = process.env.OUTPOST_PACKAGE_CACHE ?? '/var/cache/outpost-test-packages';

/** The Debian archive this machine's apt sources name first: where its own packages come from. */
export function machineArchive(): string {
  const files = ['/etc/apt/sources.list', ...readdirSync('/etc/apt/sources.list.d').map((f) => join('/etc/apt/sources.list.d', f))];
  for (const file of files.filter((f) => /\.(list|sources)$/.test(f) && existsSync(f))) {
    const text = readFileSync(file, 'utf8');
    const uri = /^URIs:\s*(\S+\/debian)\s*$/m.exec(text)?.[1] ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\s/m.exec(text)?.[1];
    if (uri) return uri;
  }
  throw new Error('no Debian archive in /etc/apt/sources.list{,.d}');
}

/** apt options for `suite` of that archive alone, with package lists of its own under PACKAGE_CACHE (read once); none: the machine's own. */
export async function aptOptions(suite: string | undefined): Promise<string[]> {
  if (!suite) return [];
  const dir = join(PACKAGE_CACHE, `apt-${suite}`);
  const options = [
    '-o',
    `Dir::Etc::SourceList=${join(dir, 'sources.list')}`,
    '-o',
    'Dir::Etc::SourceParts=/dev/null',
    '-o',
    `Dir::State::Lists=${join(dir, 'lists')}`,
    '-o',
    `Dir::Cache=${join(dir, 'cache')}`,
  ];
  if (!existsSync(join(dir, 'lists', '.complete'))) {
    await mkdir(join(dir, 'lists', 'partial'), { recursive: true });
    await mkdir(join(dir, 'cache'), { recursive: true });
    await writeFile(
      join(dir, 'sources.list'),
      `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${machineArchive()} ${suite} main\n`,
    );
    await exec('apt-get', [...options, 'update', '-qq']);
    await writeFile(join(dir, 'lists', '.complete'), '');
  }
  return options;
}

/**
 * `packages` (with the apt options of their suite) downloaded and unpacked together, once, into
 * PACKAGE_CACHE/<name> — not installed: the machine's own packages stay as they are. `prepare` runs
 * on the unpacked tree before it is kept.
 */
export async function unpackedPackages(
  name: string,
  packages: readonly string[],
  apt: readonly string[],
  prepare?: (root: string) => Promise<void>,
): Promise<string> {
  const root = join(PACKAGE_CACHE, name);
  if (existsSync(join(root, '.complete'))) return root;
  const partial = `${root}.partial`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  await exec('apt-get', [...apt, 'download', '-qq', ...packages], { cwd: partial });
  for (const deb of readdirSync(partial).filter((f) => f.endsWith('.deb'))) {
    await exec('dpkg-deb', ['-x', join(partial, deb), partial]);
    await rm(join(partial, deb));
  }
  await prepare?.(partial);
  await writeFile(join(partial, '.complete'), '');
  await rm(root, { recursive: true, force: true });
  await rename(partial, root);
  return root;
}
