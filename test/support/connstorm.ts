import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { docker } from './docker.js';

const SOURCE = new URL('native/connstorm.c', import.meta.url).pathname;

/** test/support/native/connstorm.c, built static into `dir`: its path. */
export async function buildConnstorm(dir: string): Promise<string> {
  const binary = join(dir, 'connstorm');
  await promisify(execFile)('cc', ['-O2', '-static', '-o', binary, SOURCE]);
  return binary;
}

/**
 * connstorm, built static (the busybox containers have no libc) and copied into each container as
 * /bin/connstorm: connections shorter than a millisecond, made and accepted inside the test's
 * containers at a rate a shell forking nc cannot reach.
 */
export async function installConnstorm(containers: readonly string[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-connstorm-'));
  try {
    const binary = await buildConnstorm(dir);
    for (const c of containers) await docker(['cp', binary, `${c}:/bin/connstorm`]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
