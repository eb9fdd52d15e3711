import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { docker, waitFor } from './docker.js';

/**
 * A second Docker daemon of the test's own, so that stopping and starting it disturbs no other
 * test. No bridge and no iptables rules: its containers have no network but loopback. It runs in
 * a network namespace of its own (`unshare --net`): a daemon started with `--bridge none` deletes
 * the `docker0` it finds, and this machine's engine and other tests use that one.
 */
export class PrivateDaemon {
  readonly socket = 'unix:///run/outpost-it-d2.sock';
  readonly #pidFile = '/run/outpost-it-d2.pid';

  async start(): Promise<void> {
    const child = spawn(
      'unshare',
      [
        '--net',
        'dockerd',
        '--host',
        this.socket,
        '--data-root',
        '/var/lib/outpost-it-d2',
        '--exec-root',
        '/run/outpost-it-d2',
        '--pidfile',
        this.#pidFile,
        '--storage-driver',
        'vfs',
        '--bridge',
        'none',
        '--iptables=false',
        '--ip6tables=false',
        '--shutdown-timeout',
        '1',
      ],
      { stdio: 'ignore', detached: true },
    );
    child.unref();
    await waitFor(
      'the private Docker daemon to answer',
      async () => (await docker(['version', '-f', '{{.Server.Version}}'], this.socket)) !== '',
      30_000,
    );
  }

  async stop(): Promise<void> {
    if (!existsSync(this.#pidFile)) return;
    process.kill(Number(readFileSync(this.#pidFile, 'utf8')), 'SIGTERM');
    await waitFor('the private Docker daemon to stop', () => !existsSync(this.#pidFile), 30_000);
  }
}
