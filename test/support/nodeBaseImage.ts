import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { machineArchive } from './debianArchive.js';
import { docker } from './docker.js';

const exec = promisify(execFile);

/** Name of the stand-in for the Node base image; the Dockerfile gets it as NODE_IMAGE. */
export const NODE_STAND_IN = `outpost-test/node-standin:${process.versions.node}-bookworm`;

/**
 * No registry is reachable here, so the Node base image (node:*-bookworm-slim: Debian 12 with
 * node and npm in /usr/local) is made the way it is made: a minimal Debian 12 from the archive this
 * machine uses (debootstrap), with this machine's node and npm, and a `node` user (uid 1000). Its
 * apt works as the real one's does, so the Dockerfile's package installs run as they would.
 */
export async function ensureNodeStandIn(): Promise<string> {
  try {
    await docker(['image', 'inspect', NODE_STAND_IN]);
    return NODE_STAND_IN;
  } catch {
    // make it
  }
  const root = await mkdtemp(join(tmpdir(), 'outpost-node-standin-'));
  try {
    await exec('debootstrap', ['--variant=minbase', 'bookworm', root, machineArchive()], { maxBuffer: 64 * 1024 * 1024 });
    await cp(process.execPath, join(root, 'usr/local/bin/node'));
    await cp('/usr/lib/node_modules/npm', join(root, 'usr/local/lib/node_modules/npm'), { recursive: true });
    // As in the official image: node's headers beside it, for node-gyp (which could not download them here).
    await cp('/usr/include/node', join(root, 'usr/local/include/node'), { recursive: true, dereference: true });
    await mkdir(join(root, 'usr/local/bin'), { recursive: true });
    await symlink('../lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr/local/bin/npm'));
    await symlink('../lib/node_modules/npm/bin/npx-cli.js', join(root, 'usr/local/bin/npx'));
    await exec('chroot', [
      root,
      'sh',
      '-c',
      'groupadd --gid 1000 node && useradd --uid 1000 --gid node --create-home --shell /bin/bash node && apt-get clean',
    ]);
    await exec('chmod', ['755', root]); // mkdtemp made it 0700: "/" of the image
    await exec(
      'sh',
      [
        '-c',
        `tar -C ${root} -c . | docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' -c 'CMD ["node"]' - ${NODE_STAND_IN}`,
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  return NODE_STAND_IN;
}
