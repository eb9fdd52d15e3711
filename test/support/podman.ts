import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { TEST_IMAGE, docker, waitFor } from './docker.js';

const exec = promisify(execFile);

/**
 * Rootful Podman's Docker-compatible API (`podman system service`) on a socket of the test's
 * own, with the test image loaded. Containers need lower ulimits than Podman's defaults here
 * (ENVIRONMENT.md), and Docker's FORWARD policy (DROP) would stop traffic on a Podman bridge,
 * so the test opens the bridges it uses and closes them again.
 */
export class PodmanService {
  /** `docker run` options every container needs on this machine. */
  static readonly RUN_OPTIONS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];
  readonly socketPath = '/run/outpost-it-podman.sock';
  readonly host = `unix://${this.socketPath}`;
  readonly #child: ChildProcess;
  readonly #forwards: string[][] = [];

  private constructor(child: ChildProcess) {
    this.#child = child;
  }

  /**
   * runc (which Docker's package brings) rather than crun where the host's cgroups are hybrid
   * (v1 controllers with a v2 mount beside them): crun refuses to start containers there.
   */
  static #runtime(): string[] {
    return existsSync('/sys/fs/cgroup/unified') && existsSync('/usr/sbin/runc') ? ['--runtime', 'runc'] : [];
  }

  static async start(): Promise<PodmanService> {
    await rm('/run/outpost-it-podman.sock', { force: true });
    const child = spawn('podman', [...PodmanService.#runtime(), 'system', 'service', '--time=0', 'unix:///run/outpost-it-podman.sock'], {
      stdio: 'ignore',
    });
    const service = new PodmanService(child);
    await waitFor(
      'the Podman API to answer',
      async () => (await docker(['version', '-f', '{{.Server.Version}}'], service.host)) !== '',
      30_000,
    );
    await exec('sh', ['-c', `docker save ${TEST_IMAGE} | podman load -q`]);
    return service;
  }

  async version(): Promise<string> {
    return docker(['version', '-f', '{{.Server.Version}}'], this.host);
  }

  /** Lets containers on Podman network `network` talk to each other through the FORWARD chain. */
  async openBridge(network: string): Promise<void> {
    const device = (await exec('podman', ['network', 'inspect', network, '-f', '{{.NetworkInterface}}'])).stdout.trim();
    const rule = ['-i', device, '-o', device, '-j', 'ACCEPT'];
    await exec('iptables', ['-I', 'FORWARD', ...rule]);
    this.#forwards.push(rule);
  }

  async stop(): Promise<void> {
    for (const rule of this.#forwards) await exec('iptables', ['-D', 'FORWARD', ...rule]).catch(() => undefined);
    if (this.#child.exitCode === null) {
      this.#child.kill('SIGTERM');
      await once(this.#child, 'exit');
    }
    await rm(this.socketPath, { force: true });
  }
}
