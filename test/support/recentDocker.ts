import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { aptOptions, unpackedPackages } from './debianArchive.js';
import { docker, waitFor } from './docker.js';

const exec = promisify(execFile);

/**
 * A recent Docker Engine beside this machine's: Debian 13's docker.io (26.1) with its containerd,
 * unpacked from the archive this machine uses (not installed), run as a daemon of the
 * test's own. Debian 12's Docker 20.10 cannot grant CAP_BPF or CAP_PERFMON (it knows no capability
 * after CAP_AUDIT_READ); Debian 13's 26.1 can. A default bridge of its own (never this
 * machine's docker0) and no iptables rules: the test's networks are --internal, and the test opens
 * their bridges in FORWARD.
 */
export class RecentDockerEngine {
  readonly socket = 'unix:///run/outpost-it-d26.sock';
  readonly socketPath = '/run/outpost-it-d26.sock';
  readonly #pidFile = '/run/outpost-it-d26.pid';
  readonly #forwards: string[][] = [];
  static readonly BRIDGE = 'outpost-d26';

  static async start(): Promise<RecentDockerEngine> {
    const engine = new RecentDockerEngine();
    await engine.stop(); // what a killed run left
    await exec('ip', ['link', 'add', RecentDockerEngine.BRIDGE, 'type', 'bridge']);
    await exec('ip', ['addr', 'add', '10.213.27.1/24', 'dev', RecentDockerEngine.BRIDGE]);
    await exec('ip', ['link', 'set', RecentDockerEngine.BRIDGE, 'up']);
    // runc stays this machine's: Debian 13's needs a newer C library than Debian 12 has.
    const root = await unpackedPackages('docker-trixie', ['docker.io', 'containerd'], await aptOptions('trixie'));
    const child = spawn(
      join(root, 'usr/sbin/dockerd'),
      [
        '--host',
        engine.socket,
        '--data-root',
        '/var/lib/outpost-it-d26',
        '--exec-root',
        '/run/outpost-it-d26',
        '--pidfile',
        engine.#pidFile,
        '--storage-driver',
        'vfs',
        // A default bridge of its own: with none (or docker0) it would take this machine's engine's docker0.
        '--bridge',
        RecentDockerEngine.BRIDGE,
        '--iptables=false',
        '--ip6tables=false',
        '--shutdown-timeout',
        '1',
      ],
      // Its own containerd; this machine's runc and docker-init.
      {
        stdio: 'ignore',
        detached: true,
        env: { ...process.env, PATH: `${join(root, 'usr/bin')}:${join(root, 'usr/sbin')}:${process.env.PATH}` },
      },
    );
    child.unref();
    await waitFor(
      'the recent Docker Engine to answer',
      async () => (await docker(['version', '-f', '{{.Server.Version}}'], engine.socket).catch(() => '')) !== '',
      60_000,
    );
    return engine;
  }

  async version(): Promise<string> {
    return docker(['version', '-f', '{{.Server.Version}}'], this.socket);
  }

  /** Copies an image of this machine's engine into this one. */
  async load(image: string): Promise<void> {
    await exec('sh', ['-c', `docker save ${image} | docker -H ${this.socket} load -q`], { maxBuffer: 16 * 1024 * 1024 });
  }

  /** Lets the containers on network `network` talk to each other through the FORWARD chain (this machine's engine sets it to DROP). */
  async openBridge(network: string): Promise<void> {
    const id = await docker(['network', 'inspect', '-f', '{{.Id}}', network], this.socket);
    const rule = ['-i', `br-${id.slice(0, 12)}`, '-o', `br-${id.slice(0, 12)}`, '-j', 'ACCEPT'];
    await exec('iptables', ['-I', 'FORWARD', ...rule]);
    this.#forwards.push(rule);
  }

  async stop(): Promise<void> {
    for (const rule of this.#forwards.splice(0)) await exec('iptables', ['-D', 'FORWARD', ...rule]).catch(() => undefined);
    if (existsSync(this.#pidFile)) {
      try {
        process.kill(Number(readFileSync(this.#pidFile, 'utf8')), 'SIGTERM');
        await waitFor('the recent Docker Engine to stop', () => !existsSync(this.#pidFile), 30_000);
      } catch {
        // gone, its pid file left behind
      }
    }
    await exec('ip', ['link', 'del', RecentDockerEngine.BRIDGE]).catch(() => undefined);
  }
}
