import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { docker } from './docker.js';

const exec = promisify(execFile);

/** Name of the stand-in for the Node base image; the Dockerfile gets it as NODE_IMAGE. */
export const NODE_STAND_IN = `outpost-test/node-standin:${process.versions.node}`;

const SHELL_APPLETS = ['sh', 'ls', 'cat', 'mkdir', 'rm', 'cp', 'mv', 'ln', 'chmod', 'chown', 'env', 'id', 'ps', 'sleep', 'wget', 'grep', 'sed', 'readlink'];

/**
 * No registry is reachable here, so the Node base image is made from this machine's node
 * binary, the libraries ldd lists for it, its npm, and busybox for the shell RUN needs, with a
 * `node` user (uid 1000) as in the official image.
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
    const node = process.execPath;
    const { stdout } = await exec('ldd', [node]);
    const libraries = [...stdout.matchAll(/(\/\S+)\s+\(0x/g)].map((m) => m[1]!);
    for (const file of [node, ...libraries]) {
      await mkdir(join(root, dirname(file)), { recursive: true });
      await cp(file, join(root, file), { dereference: true });
    }
    await mkdir(join(root, 'usr/local/bin'), { recursive: true });
    await symlink(node, join(root, 'usr/local/bin/node'));
    await cp('/usr/lib/node_modules/npm', join(root, 'usr/lib/node_modules/npm'), { recursive: true });
    await symlink('/usr/lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr/local/bin/npm'));
    await mkdir(join(root, 'bin'), { recursive: true });
    await copyFile('/usr/bin/busybox', join(root, 'bin/busybox'));
    await exec('chmod', ['755', join(root, 'bin/busybox')]);
    for (const applet of SHELL_APPLETS) await symlink('busybox', join(root, 'bin', applet));
    // npm's shebang is #!/usr/bin/env node.
    await symlink('/bin/busybox', join(root, 'usr/bin/env'));
    await mkdir(join(root, 'etc'), { recursive: true });
    await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n');
    await writeFile(join(root, 'etc/group'), 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n');
    await writeFile(join(root, 'etc/nsswitch.conf'), await readFile('/etc/nsswitch.conf', 'utf8').catch(() => 'hosts: files dns\n'));
    for (const dir of ['tmp', 'root', 'home/node']) await mkdir(join(root, dir), { recursive: true });
    await exec('chmod', ['1777', join(root, 'tmp')]);
    await exec('chown', ['1000:1000', join(root, 'home/node')]);
    await exec('chmod', ['755', root]); // mkdtemp made it 0700: "/" of the image
    await exec('sh', ['-c', `tar -C ${root} -c . | docker import -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' - ${NODE_STAND_IN}`]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  return NODE_STAND_IN;
}
