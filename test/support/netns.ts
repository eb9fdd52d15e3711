import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { statSync } from 'node:fs';
import { promisify } from 'node:util';
import { parseSsOutput, type SsSocket } from './ssOutput.js';
import { nstatCounter } from './nstat.js';

const exec = promisify(execFile);

/**
 * Two network namespaces of the test's own joined by a veth pair — "a server" and "a client" with
 * private addresses nothing else routes to — for tests that need no Docker Engine (the kernel
 * matrix runs them in virtual machines). Removed by close().
 */
export class NamespacePair {
  readonly server: string;
  readonly client: string;
  readonly serverV4 = '10.213.250.1';
  readonly clientV4 = '10.213.250.2';
  readonly serverV6 = 'fd00:213:250::1';
  readonly clientV6 = 'fd00:213:250::2';
  readonly #processes: ChildProcess[] = [];

  private constructor(prefix: string) {
    this.server = `${prefix}-srv`;
    this.client = `${prefix}-cli`;
  }

  static async create(prefix: string): Promise<NamespacePair> {
    const pair = new NamespacePair(prefix);
    await pair.close(); // what a killed run left
    const ip = (...args: string[]) => exec('ip', args);
    const [s, c] = [pair.server, pair.client];
    await ip('netns', 'add', s);
    await ip('netns', 'add', c);
    await ip('link', 'add', `${prefix}0`, 'netns', s, 'type', 'veth', 'peer', 'name', `${prefix}1`, 'netns', c);
    for (const [ns, dev, v4, v6] of [
      [s, `${prefix}0`, pair.serverV4, pair.serverV6],
      [c, `${prefix}1`, pair.clientV4, pair.clientV6],
    ] as const) {
      await ip('-n', ns, 'addr', 'add', `${v4}/30`, 'dev', dev);
      await ip('-n', ns, 'addr', 'add', `${v6}/64`, 'dev', dev, 'nodad');
      await ip('-n', ns, 'link', 'set', dev, 'up');
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    return pair;
  }

  /** The namespace's id as outpost names it ("net:[inode]"). */
  id(ns: string): string {
    return `net:[${statSync(`/run/netns/${ns}`).ino}]`;
  }

  /** Runs a command in the namespace to its end; its stdout. */
  async run(ns: string, command: string[]): Promise<string> {
    return (await exec('ip', ['netns', 'exec', ns, ...command], { maxBuffer: 16 * 1024 * 1024 })).stdout;
  }

  /** One of the kernel's counters of the namespace (nstat's name: TcpActiveOpens, …). */
  async counter(ns: string, name: string): Promise<number> {
    return nstatCounter(await this.run(ns, ['nstat', '-asz', name]), name);
  }

  /**
   * Starts a command in the namespace, ended by close(); resolves once it printed `ready` (if given),
   * with its process group's id (`ip netns exec` runs the command in its own place: its pid).
   */
  async start(ns: string, command: string[], ready?: string): Promise<number> {
    // A group of its own: close() ends the command and whatever it started (sleep | nc).
    const child = spawn('ip', ['netns', 'exec', ns, ...command], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    this.#processes.push(child);
    const group = child.pid!;
    if (!ready) return group;
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await Promise.race([
      new Promise<void>((resolve) =>
        child.stdout.on('data', () => {
          if (out.includes(ready)) resolve();
        }),
      ),
      once(child, 'exit').then(([code]) => Promise.reject(new Error(`${command.join(' ')} exited with ${code} before "${ready}"`))),
    ]);
    return group;
  }

  /** The kernel's own view of the namespace's TCP sockets (ss -tanHe: with inodes and cookies). */
  async kernelSockets(ns: string): Promise<SsSocket[]> {
    return parseSsOutput(await this.run(ns, ['ss', '-tanHe']));
  }

  async close(): Promise<void> {
    for (const p of this.#processes) {
      try {
        process.kill(-p.pid!, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await Promise.all(this.#processes.filter((p) => p.exitCode === null && p.signalCode === null).map((p) => once(p, 'exit')));
    this.#processes.length = 0;
    for (const ns of [this.server, this.client]) await exec('ip', ['netns', 'del', ns]).catch(() => undefined);
  }
}
