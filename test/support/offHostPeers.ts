import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { waitFor } from './docker.js';

const exec = promisify(execFile);
const ip = (...args: string[]) => exec('ip', args);

/**
 * "The internet", made by the test: a network namespace of its own behind a veth pair from the
 * host, holding a DNS server (dnsmasq, answering only the names given, forwarding nothing) and,
 * on port 8080 of the addresses given, an HTTP server (`http`: busybox httpd) or a listener that
 * accepts and says nothing for 60 s (`hold`: a client stays connected, its process alive). Containers reach it through the host's routing, as
 * they would reach a peer off the host; nothing else is reached. Removed by close().
 */
export class OffHostPeers {
  readonly namespace: string;
  /** The host's end of the veth. */
  readonly gateway: string;
  /** Where dnsmasq listens. */
  readonly dnsServer: string;
  readonly #device: string;
  readonly #processes: ChildProcess[] = [];
  /** What dnsmasq logged: each query and its answer. */
  #queries = '';

  private constructor(
    name: string,
    readonly subnet24: string,
  ) {
    this.namespace = `outpost-${name}`;
    this.#device = `op${name}`.slice(0, 12);
    this.gateway = `${subnet24}.1`;
    this.dnsServer = `${subnet24}.2`;
  }

  /**
   * The namespace with the DNS server on `${subnet24}.2`, answering `names` (name → the last
   * byte of its address), and a listener on each address of `listeners` (last byte → kind).
   */
  static async create(
    name: string,
    subnet24: string,
    names: Record<string, number>,
    listeners: Record<number, 'http' | 'hold'>,
  ): Promise<OffHostPeers> {
    const peers = new OffHostPeers(name, subnet24);
    await peers.close(); // what a killed run left
    try {
      await peers.#make(names, listeners);
    } catch (error) {
      await peers.close();
      throw error;
    }
    return peers;
  }

  async #make(names: Record<string, number>, listeners: Record<number, 'http' | 'hold'>): Promise<void> {
    const subnet24 = this.subnet24;
    const [ns, host, inside] = [this.namespace, `${this.#device}0`, `${this.#device}1`];
    await ip('netns', 'add', ns);
    await ip('link', 'add', host, 'type', 'veth', 'peer', 'name', inside, 'netns', ns);
    await ip('addr', 'add', `${this.gateway}/24`, 'dev', host);
    await ip('link', 'set', host, 'up');
    for (const last of [2, ...Object.keys(listeners).map(Number)])
      await ip('-n', ns, 'addr', 'add', `${subnet24}.${last}/24`, 'dev', inside);
    await ip('-n', ns, 'link', 'set', inside, 'up');
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
    await ip('-n', ns, 'route', 'add', 'default', 'via', this.gateway);
    const records = Object.entries(names).map(([n, last]) => `--host-record=${n},${subnet24}.${last}`);
    const dnsmasq = this.#start(
      [
        'dnsmasq',
        '--no-daemon',
        '--no-resolv',
        '--no-hosts',
        '--log-queries',
        `--listen-address=${this.dnsServer}`,
        '--bind-interfaces',
        '--local-ttl=300',
        ...records,
      ],
      'stderr',
    );
    dnsmasq.stderr?.on('data', (chunk: Buffer) => (this.#queries += chunk.toString()));
    await waitFor('dnsmasq to start', () => this.#queries.includes('cleared cache'));
    for (const [last, kind] of Object.entries(listeners)) {
      const address = `${subnet24}.${last}`;
      this.#start(
        kind === 'http'
          ? [
              'sh',
              '-c',
              `mkdir -p /tmp/outpost-www-$$ && echo ok > /tmp/outpost-www-$$/index.html && exec busybox httpd -f -p ${address}:8080 -h /tmp/outpost-www-$$`,
            ]
          : [process.execPath, '-e', `require('net').createServer((s) => setTimeout(() => s.destroy(), 60000)).listen(8080, '${address}')`],
      );
    }
    await waitFor(
      'the listeners to listen',
      async () => (await this.run(['ss', '-tlnH', 'sport = :8080'])).trim().split('\n').length === Object.keys(listeners).length,
    );
  }

  address(last: number): string {
    return `${this.subnet24}.${last}`;
  }

  /** The queries dnsmasq was asked for `name` (each logged "query[A] name from …"). */
  queriesFor(name: string): number {
    return this.#queries.split('\n').filter((l) => l.includes(`query[A] ${name} from`)).length;
  }

  async run(command: string[]): Promise<string> {
    return (await exec('ip', ['netns', 'exec', this.namespace, ...command])).stdout;
  }

  #start(command: string[], output: 'stderr' | 'none' = 'none'): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.namespace, ...command], {
      stdio: ['ignore', 'ignore', output === 'stderr' ? 'pipe' : 'ignore'],
      detached: true,
    });
    this.#processes.push(child);
    return child;
  }

  async close(): Promise<void> {
    for (const child of this.#processes.splice(0)) {
      if (child.exitCode !== null || child.pid === undefined) continue;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // gone
      }
      await once(child, 'exit');
    }
    // Whatever a killed run left running in the namespace.
    const left = await exec('ip', ['netns', 'pids', this.namespace]).then(
      (r) => r.stdout.split('\n').filter(Boolean),
      () => [],
    );
    for (const pid of left) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone
      }
    }
    await ip('netns', 'del', this.namespace).catch(() => undefined);
    await ip('link', 'del', `${this.#device}0`).catch(() => undefined);
  }
}
