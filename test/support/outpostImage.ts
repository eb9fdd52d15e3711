import { execFile } from 'node:child_process';
import { copyFile, cp, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureNodeStandIn } from './nodeBaseImage.js';

const exec = promisify(execFile);
const REPO = new URL('../../', import.meta.url).pathname;
const CONTEXT = [
  'Dockerfile',
  '.dockerignore',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'scripts',
  'src',
  'native',
  'bin',
  'build-ca',
];

/**
 * Builds the project's Dockerfile on the stand-in Node base. The build reaches the npm registry
 * the way this machine does (host network, and the CA bundle the machine trusts, given to the
 * build stage through build-ca/), from a copy of the context so the work tree stays clean.
 */
export async function buildOutpostImage(tag: string): Promise<void> {
  const base = await ensureNodeStandIn();
  const context = await mkdtemp(join(tmpdir(), 'outpost-build-'));
  try {
    // Not what was built here (native/build): the image builds its own, or none.
    const notBuilt = (source: string) => !/\/native\/build(\/|$)/.test(source);
    for (const entry of CONTEXT) await cp(join(REPO, entry), join(context, entry), { recursive: true, filter: notBuilt });
    // The CAs this machine trusts (a TLS proxy in front of the registry is among them here).
    const ca = [process.env.NODE_EXTRA_CA_CERTS, '/etc/ssl/certs/ca-certificates.crt'].find((f) => f && existsSync(f));
    if (ca) await copyFile(ca, join(context, 'build-ca', 'ca.crt'));
    await exec('docker', ['build', '--network', 'host', '--build-arg', `NODE_IMAGE=${base}`, '-t', tag, context], {
      env: { ...process.env, DOCKER_BUILDKIT: '0' },
      maxBuffer: 64 * 1024 * 1024,
    }).catch((caught: unknown) => {
      const error = caught as Error & { stdout?: string };
      throw new Error(`${error.message}\n${(error.stdout ?? '').split('\n').slice(-60).join('\n')}`);
    });
  } finally {
    await rm(context, { recursive: true, force: true });
  }
}
