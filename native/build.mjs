// Builds the sock_diag addon at install (npm's "install" script). A failed build is not an
// install failure: outpost then reads procfs and says so at start.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const directory = dirname(fileURLToPath(import.meta.url));
const args = ['rebuild', '--directory', directory];
// Use the headers installed next to this node (e.g. /usr/include/node) rather than a download.
const prefix = dirname(dirname(process.execPath));
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
const result = spawnSync('node-gyp', args, { stdio: 'inherit' });
if (result.status !== 0) {
  const why = result.error ? result.error.message : `node-gyp exited with ${result.status}`;
  console.warn(`outpost: the sock_diag addon did not build (${why}); it needs python3, make and a C compiler. outpost will read procfs instead of netlink.`);
}
