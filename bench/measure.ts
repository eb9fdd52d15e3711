import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import type { BenchContainer } from './scenario.js';

const run = promisify(execFile);

/** A whole-number flag of a bench program, at least `min`; exits 2 naming the flag otherwise. */
export function wholeNumberFlag(program: string, name: string, value: string | undefined, fallback: number, min = 0): number {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`${program}: --${name} expects a whole number of at least ${min}, got "${value}"\n`);
    process.exit(2);
  }
  return n;
}

export interface Summary {
  median: number;
  p95: number;
  mean: number;
  samples: number;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  return { median: at(0.5), p95: at(0.95), mean: sorted.reduce((a, b) => a + b, 0) / sorted.length, samples: sorted.length };
}

/** The floor: bench/floor.c, compiled once, one round per call; it times itself. */
export async function floorRound(binary: string, containers: readonly BenchContainer[]): Promise<{ ms: number; sockets: number }> {
  const { stdout } = await run(binary, ['1', ...containers.map((c) => String(c.pid))]);
  const [seconds, sockets] = stdout.trim().split(' ');
  return { ms: Number(seconds) * 1000, sockets: Number(sockets) };
}

/** What the bench calls of the ebpf source's addon (native/bpf_source.c). */
interface EbpfAddon {
  load(path: string): object;
  sockets(h: object): Buffer;
  drainEvents(h: object): Buffer;
  close(h: object): void;
  recordSize: number;
}

/**
 * The ebpf source's floor: its kernel read alone, as outpost makes it each collection (drain the
 * events, list every namespace's known sockets, drain again; copied out by its addon), with no
 * JavaScript past the calls. Compared with one namespace's netlink dump.
 */
export class EbpfRead {
  readonly #addon: EbpfAddon;
  readonly #handle: object;

  constructor(root: string) {
    const native = (path: string) => join(root, 'native', path);
    this.#addon = createRequire(import.meta.url)(native('build/Release/bpf_source.node')) as EbpfAddon;
    const built = native('build/outpost.bpf.o');
    this.#handle = this.#addon.load(existsSync(built) ? built : native('bpf/outpost.bpf.o'));
  }

  round(): { ms: number; sockets: number } {
    const start = performance.now();
    this.#addon.drainEvents(this.#handle);
    const listed = this.#addon.sockets(this.#handle).length;
    this.#addon.drainEvents(this.#handle);
    return { ms: performance.now() - start, sockets: listed / this.#addon.recordSize };
  }

  close(): void {
    this.#addon.close(this.#handle);
  }
}

/** The ancestor: `docker exec <container> cat /proc/net/tcp /proc/net/tcp6`, one container after another. */
export async function ancestorRound(containers: readonly BenchContainer[]): Promise<{ ms: number; lines: number }> {
  const start = performance.now();
  let lines = 0;
  for (const c of containers) {
    const { stdout } = await run('docker', ['exec', c.name, 'cat', '/proc/net/tcp', '/proc/net/tcp6'], { maxBuffer: 64 * 1024 * 1024 });
    lines += stdout.split('\n').length - 3;
  }
  return { ms: performance.now() - start, lines };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const CLOCK_TICKS = Number((await run('getconf', ['CLK_TCK'])).stdout.trim()) || 100;

export interface Scrape {
  wallMs: number;
  /** Sum of outpost_collector_duration_seconds over the stages. */
  collectionMs: number;
  stagesMs: Record<string, number>;
  bytes: number;
  series: number;
  source: string;
  up: boolean;
}

/** outpost as the program users run (bin/outpost), on loopback, measured from outside. */
export class OutpostProcess {
  readonly #child: ChildProcess;
  readonly #url: string;
  collections = 0;
  /** The exposition of the last scrape(). */
  lastText = '';

  private constructor(child: ChildProcess, url: string) {
    this.#child = child;
    this.#url = url;
  }

  /** `checkout`'s outpost as users start it: its bin/outpost launcher, else node dist/main.js (older checkouts). */
  static async start(checkout: string, source: string, flags: readonly string[] = []): Promise<OutpostProcess> {
    const port = await freePort();
    const launcher = join(checkout, 'bin', 'outpost');
    const [command, ...args] = existsSync(launcher) ? [launcher] : [process.execPath, join(checkout, 'dist', 'main.js')];
    const child = spawn(
      command,
      [...args, `--web.listen-address=127.0.0.1:${port}`, `--collector.source=${source}`, '--log.level=warn', ...flags],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    const outpost = new OutpostProcess(child, `http://127.0.0.1:${port}`);
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${outpost.#url}/healthz`)).ok) break;
      } catch {
        if (i > 100) throw new Error('outpost did not start');
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return outpost;
  }

  get url(): string {
    return this.#url;
  }

  async metricsText(): Promise<string> {
    const text = await (await fetch(`${this.#url}/metrics`)).text();
    this.collections++;
    return text;
  }

  async scrape(): Promise<Scrape> {
    const start = performance.now();
    const text = await (await fetch(`${this.#url}/metrics`)).text();
    const wallMs = performance.now() - start;
    this.collections++;
    this.lastText = text;
    const stagesMs: Record<string, number> = {};
    for (const m of text.matchAll(/^outpost_collector_duration_seconds\{collector="(\w+)"\} (\S+)$/gm))
      stagesMs[m[1]!] = Number(m[2]) * 1000;
    return {
      wallMs,
      collectionMs: Object.values(stagesMs).reduce((a, b) => a + b, 0),
      stagesMs,
      bytes: Buffer.byteLength(text),
      series: text.split('\n').filter((l) => l && !l.startsWith('#')).length,
      source: /^outpost_build_info\{[^}]*source="(\w+)"/m.exec(text)?.[1] ?? '?',
      up: /^outpost_up 1$/m.test(text),
    };
  }

  /** User + system CPU seconds of the process so far (all its threads). */
  cpuSeconds(): number {
    const fields = readFileSync(`/proc/${this.#child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  }

  /** Resident memory now, and its peak, in KiB. */
  memoryKiB(): { rss: number; peak: number } {
    const status = readFileSync(`/proc/${this.#child.pid}/status`, 'utf8');
    return { rss: Number(/^VmRSS:\s+(\d+)/m.exec(status)![1]), peak: Number(/^VmHWM:\s+(\d+)/m.exec(status)![1]) };
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#child.kill('SIGTERM');
    await new Promise((resolve) => this.#child.once('exit', resolve));
  }
}
