import { execFile } from 'node:child_process';
import { mkdtemp, rm, symlink, copyFile, mkdir, readFile, readdir, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseSsInfo, parseSsOutput, type SsInfo, type SsSocket } from './ssOutput.js';
import { errorMessage } from '../../src/base/errors.js';
import { nstatCounter } from './nstat.js';

const exec = promisify(execFile);

export const TEST_IMAGE = 'outpost-test/busybox:1';
const APPLETS = ['sh', 'nc', 'sleep', 'cat', 'httpd', 'timeout', 'ip', 'wget', 'killall', 'mkdir', 'date', 'nslookup'];
// Stamped on the image: one made with fewer applets by an older checkout is made again.
const APPLETS_LABEL = 'outpost.test.applets';

/** Runs the docker CLI against `host` (default: DOCKER_HOST or the local socket); returns stdout trimmed. */
export async function docker(args: string[], host?: string): Promise<string> {
  const hostArgs = host ? ['-H', host] : [];
  const { stdout } = await exec('docker', [...hostArgs, ...args], { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/**
 * Makes the test image from busybox-static when the engine lacks it: no registry is reachable
 * here (ENVIRONMENT.md).
 */
export async function ensureTestImage(host?: string): Promise<void> {
  const applets = await docker(['image', 'inspect', '-f', `{{index .Config.Labels "${APPLETS_LABEL}"}}`, TEST_IMAGE], host).catch(
    () => undefined,
  );
  if (applets === APPLETS.join(',')) return;
  const root = await mkdtemp(join(tmpdir(), 'outpost-rootfs-'));
  try {
    await mkdir(join(root, 'bin'));
    await copyFile('/usr/bin/busybox', join(root, 'bin', 'busybox'));
    for (const applet of APPLETS) await symlink('busybox', join(root, 'bin', applet));
    const hostArgs = host ? `-H ${host}` : '';
    await exec('sh', [
      '-c',
      `tar -C ${root} -c . | docker ${hostArgs} import --change 'LABEL ${APPLETS_LABEL}=${APPLETS.join(',')}' - ${TEST_IMAGE}`,
    ]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

export async function pidOf(container: string, host?: string): Promise<number> {
  return Number(await docker(['inspect', '-f', '{{.State.Pid}}', container], host));
}

/** The kernel's view of a pid's network namespace: `nsenter -t PID -n ss -tanH` (with -p: holders). */
export async function kernelSockets(pid: number, withProcesses = false): Promise<SsSocket[]> {
  const { stdout } = await exec('nsenter', ['-t', String(pid), '-n', 'ss', withProcesses ? '-tanHp' : '-tanH'], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return parseSsOutput(stdout);
}

/** Host pids of every process of a container, as the Docker daemon reports them (docker top). */
export async function processesOf(container: string): Promise<Set<number>> {
  const out = await docker(['top', container, '-eo', 'pid']);
  return new Set(
    out
      .split('\n')
      .slice(1)
      .map((l) => Number(l.trim()))
      .filter((n) => n > 0),
  );
}

/** The kernel's sockets of a namespace that the processes of `container` hold (ss -p × docker top). */
export async function socketsHeldBy(container: string, namespacePid: number): Promise<SsSocket[]> {
  const pids = await processesOf(container);
  return (await kernelSockets(namespacePid, true)).filter((s) => s.pids.some((p) => pids.has(p)));
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${errorMessage(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The containers and networks one test file creates, all named with its prefix, all removed by
 * cleanup(). Networks are --internal unless said otherwise (ENVIRONMENT.md's safety rule).
 */
export class Scenario {
  readonly prefix: string;
  /** The Docker API it runs on (undefined: DOCKER_HOST or the local socket). */
  readonly host: string | undefined;
  readonly #containers: string[] = [];
  readonly #networks: string[] = [];

  constructor(name: string, host?: string) {
    this.prefix = `outpost-it-${name}`;
    this.host = host;
  }

  name(short: string): string {
    return `${this.prefix}-${short}`;
  }

  async network(short: string, subnets: string[], options: { internal?: boolean; extra?: string[] } = {}): Promise<string> {
    const name = this.name(short);
    const internal = options.internal ?? true;
    await docker(['network', 'rm', name], this.host).catch(() => undefined);
    const args = ['network', 'create'];
    if (internal) args.push('--internal');
    if (subnets.some((s) => s.includes(':'))) args.push('--ipv6');
    for (const subnet of subnets) args.push('--subnet', subnet);
    args.push(...(options.extra ?? []), name);
    try {
      await docker(args, this.host);
    } catch (error) {
      // Docker 20.10 sometimes keeps a stale endpoint on a removed container's network ("has
      // active endpoints" with none left), so an earlier run's network cannot be removed. The
      // same network, as internal and on the same subnets, serves as well.
      const existing = await docker(
        ['network', 'inspect', '-f', '{{.Internal}} {{range .IPAM.Config}}{{.Subnet}} {{end}}', name],
        this.host,
      ).catch(() => '');
      if (existing !== `${internal} ${subnets.join(' ')}` || (options.extra ?? []).length > 0) throw error;
    }
    this.#networks.push(name);
    return name;
  }

  /** docker run -d --name <prefix>-<short> <options> image <command...> */
  async run(short: string, options: string[], command: string[]): Promise<string> {
    return this.#make(['run', '-d'], short, options, command);
  }

  /** docker create: for what must be set before the start (a second network with a published port). */
  async create(short: string, options: string[], command: string[]): Promise<string> {
    return this.#make(['create'], short, options, command);
  }

  async #make(verb: string[], short: string, options: string[], command: string[]): Promise<string> {
    const name = this.name(short);
    await docker(['rm', '-f', name], this.host).catch(() => undefined);
    this.#containers.push(name);
    await docker([...verb, '--name', name, ...options, TEST_IMAGE, ...command], this.host);
    return name;
  }

  async ip(container: string, network: string, family: 4 | 6 = 4): Promise<string> {
    const field = family === 4 ? 'IPAddress' : 'GlobalIPv6Address';
    return docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").${field}}}`, container], this.host);
  }

  async cleanup(): Promise<void> {
    if (this.#containers.length) await docker(['rm', '-f', ...this.#containers], this.host).catch(() => undefined);
    for (const network of this.#networks) await docker(['network', 'rm', network], this.host).catch(() => undefined);
  }
}

/** tcp_info of a pid's namespace's connections as the kernel gives it: `nsenter -t PID -n ss -tinHO`. */
export async function kernelTcpInfo(pid: number): Promise<SsInfo[]> {
  const { stdout } = await exec('nsenter', ['-t', String(pid), '-n', 'ss', '-tinHO'], { maxBuffer: 16 * 1024 * 1024 });
  return parseSsInfo(stdout);
}

/** One of the kernel's counters of a pid's namespace (`nsenter -t PID -n nstat -asz NAME`: absolute, history untouched). */
export async function namespaceCounter(pid: number, name: string): Promise<number> {
  const { stdout } = await exec('nsenter', ['-t', String(pid), '-n', 'nstat', '-asz', name]);
  return nstatCounter(stdout, name);
}

/** The processes of a container's network namespace named `name`, as the host's /proc says them: pid, executable. */
export async function processesNamed(container: string, name: string): Promise<{ pid: number; executable: string }[]> {
  const net = await readlink(`/proc/${await pidOf(container)}/ns/net`);
  const found: { pid: number; executable: string }[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if ((await readlink(`/proc/${entry}/ns/net`)) !== net) continue;
      if ((await readFile(`/proc/${entry}/comm`, 'utf8')).trimEnd() !== name) continue;
      found.push({ pid: Number(entry), executable: await readlink(`/proc/${entry}/exe`) });
    } catch {
      // exited meanwhile
    }
  }
  return found;
}
