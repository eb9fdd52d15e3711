import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { TEST_IMAGE, docker, waitFor } from './docker.js';

const exec = promisify(execFile);
const run = async (command: string, args: string[]) => (await exec(command, args)).stdout.trim();
/** Commands for cleanup: what is already gone is not an error. */
const quietly = (command: string, args: string[]) => exec(command, args).catch(() => undefined);

/**
 * A network namespace of the test's own, joined to this machine's (or to one of its bridges) by
 * a veth pair on a test-only /24: `.1` on this side, `.2` inside. Traffic to it stays on the
 * machine (ENVIRONMENT.md's safety rule).
 */
export class TestNamespace {
  private constructor(
    readonly name: string,
    /** The veth end on this side. */
    readonly outside: string,
    /** The address inside the namespace. */
    readonly address: string,
    /** This side's address on the pair (empty when this side is a bridge port). */
    readonly peerAddress: string,
  ) {}

  /**
   * `ip netns add name`, a veth pair `<short>0` (here) / `<short>1` (inside). With `bridge`, the
   * outer end becomes a port of that bridge and `address` (on its subnet) is given inside;
   * else each end gets its /24 address.
   */
  static async create(
    name: string,
    short: string,
    linkPrefix: string,
    bridge?: { device: string; address: string; prefixLength: number },
  ): Promise<TestNamespace> {
    await TestNamespace.remove(name, `${short}0`);
    const ns = new TestNamespace(name, `${short}0`, bridge?.address ?? `${linkPrefix}.2`, bridge ? '' : `${linkPrefix}.1`);
    const inside = `${short}1`;
    await run('ip', ['netns', 'add', name]);
    await run('ip', ['link', 'add', ns.outside, 'type', 'veth', 'peer', 'name', inside]);
    await run('ip', ['link', 'set', inside, 'netns', name]);
    if (bridge) await run('ip', ['link', 'set', ns.outside, 'master', bridge.device]);
    else await run('ip', ['addr', 'add', `${ns.peerAddress}/24`, 'dev', ns.outside]);
    await run('ip', ['link', 'set', ns.outside, 'up']);
    await ns.exec('ip', ['addr', 'add', `${ns.address}/${bridge?.prefixLength ?? 24}`, 'dev', inside]);
    await ns.exec('ip', ['link', 'set', inside, 'up']);
    await ns.exec('ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** Runs a command in the namespace (network only: mounts stay this machine's, cgroups included). */
  exec(command: string, args: string[]): Promise<string> {
    return run('nsenter', [`--net=/run/netns/${this.name}`, command, ...args]);
  }

  spawn(command: string, args: string[]): ChildProcess {
    return spawn('nsenter', [`--net=/run/netns/${this.name}`, command, ...args], { stdio: 'ignore' });
  }

  async destroy(): Promise<void> {
    await TestNamespace.remove(this.name, this.outside);
  }

  static async remove(name: string, outside: string): Promise<void> {
    await quietly('ip', ['netns', 'del', name]);
    await quietly('ip', ['link', 'del', outside]);
  }
}

/**
 * A second Docker host on this machine: a Docker Engine of its own (data root, exec root, API
 * socket) started inside a TestNamespace, so that its bridges, iptables rules and published
 * ports are its own, and this machine reaches it at `address` as another host on the LAN.
 */
export class SimulatedHost {
  readonly dockerHost: string;
  readonly #dir: string;
  readonly #dataRoot: string;
  #daemon: ChildProcess | undefined;
  readonly #routes: string[] = [];
  readonly #firewall: string[][] = [];

  private constructor(
    readonly namespace: TestNamespace,
    readonly name: string,
  ) {
    this.#dir = `/run/${name}`;
    this.#dataRoot = `/var/lib/${name}`;
    this.dockerHost = `unix://${this.#dir}/docker.sock`;
  }

  /** The host's address, as this machine reaches it. */
  get address(): string {
    return this.namespace.address;
  }

  /** This machine's address, as the simulated host reaches it. */
  get peerAddress(): string {
    return this.namespace.peerAddress;
  }

  /** The engine's pid: a process in the host's network namespace (outpost's --host.pid). */
  get daemonPid(): number {
    return Number(readFileSync(`${this.#dir}/docker.pid`, 'utf8'));
  }

  /** Starts the namespace and its engine, and loads the test image into it. */
  static async start(name: string, short: string, linkPrefix: string, dockerdArgs: string[] = []): Promise<SimulatedHost> {
    const namespace = await TestNamespace.create(name, short, linkPrefix);
    const host = new SimulatedHost(namespace, name);
    await rm(host.#dir, { recursive: true, force: true });
    await rm(host.#dataRoot, { recursive: true, force: true });
    await mkdir(host.#dir, { recursive: true });
    host.#daemon = namespace.spawn('dockerd', [
      '--host',
      host.dockerHost,
      '--data-root',
      host.#dataRoot,
      '--exec-root',
      `${host.#dir}/exec`,
      '--pidfile',
      `${host.#dir}/docker.pid`,
      '--storage-driver',
      'vfs',
      '--shutdown-timeout',
      '1',
      ...dockerdArgs,
    ]);
    await waitFor(
      `the Docker Engine of ${name} to answer`,
      async () => (await docker(['version', '-f', '{{.Server.Version}}'], host.dockerHost)) !== '',
      30_000,
    );
    await exec('sh', ['-c', `docker save ${TEST_IMAGE} | docker -H ${host.dockerHost} load -q`]);
    return host;
  }

  /** Routes `subnet` (a routed network of the simulated host) from this machine to it. */
  async routeTo(subnet: string): Promise<void> {
    await run('ip', ['route', 'replace', subnet, 'via', this.address]);
    this.#routes.push(subnet);
  }

  /** Routes `subnet` (a routed network of this machine) from the simulated host to this machine. */
  async routeFrom(subnet: string): Promise<void> {
    await this.namespace.exec('ip', ['route', 'replace', subnet, 'via', this.peerAddress]);
  }

  /**
   * Lets new connections from `source` reach `destination` through this machine's Docker
   * firewall (DOCKER-USER, the chain Docker leaves to users): a routed network is reached
   * without a published port.
   */
  async allowForward(source: string, destination: string): Promise<void> {
    const rule = ['-s', source, '-d', destination, '-j', 'ACCEPT'];
    await run('iptables', ['-I', 'DOCKER-USER', ...rule]);
    this.#firewall.push(rule);
  }

  async stop(): Promise<void> {
    for (const rule of this.#firewall) await quietly('iptables', ['-D', 'DOCKER-USER', ...rule]);
    for (const subnet of this.#routes) await quietly('ip', ['route', 'del', subnet]);
    const daemon = this.#daemon;
    if (daemon && daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await Promise.race([once(daemon, 'exit'), new Promise((r) => setTimeout(r, 20_000))]);
    }
    await waitFor(`the Docker Engine of ${this.name} to stop`, () => !existsSync(`${this.#dir}/docker.pid`), 20_000).catch(() => undefined);
    await this.namespace.destroy();
    await rm(this.#dir, { recursive: true, force: true });
    await rm(this.#dataRoot, { recursive: true, force: true });
  }
}
