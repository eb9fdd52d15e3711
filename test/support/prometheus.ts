import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './docker.js';
import { freePort } from './net.js';

export interface PromSample {
  metric: Record<string, string>;
  value?: [number, string];
  values?: [number, string][];
}

export interface PromAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
}

/** A real Prometheus (Debian's) on loopback, scraping one target, with the given rules. */
export class TestPrometheus {
  readonly #dir: string;
  readonly #child: ChildProcess;
  readonly url: string;

  private constructor(dir: string, child: ChildProcess, url: string) {
    this.#dir = dir;
    this.#child = child;
    this.url = url;
  }

  /** Scrapes `targets` (host:port, each its own `instance`) as job outpost. */
  static async start(targets: string | string[], rulesYaml: string, interval = '1s'): Promise<TestPrometheus> {
    const dir = await mkdtemp(join(tmpdir(), 'outpost-prometheus-'));
    await writeFile(join(dir, 'rules.yaml'), rulesYaml);
    await writeFile(
      join(dir, 'prometheus.yml'),
      [
        'global:',
        `  scrape_interval: ${interval}`,
        `  evaluation_interval: ${interval}`,
        'rule_files:',
        `  - ${join(dir, 'rules.yaml')}`,
        'scrape_configs:',
        '  - job_name: outpost',
        '    static_configs:',
        `      - targets: ${JSON.stringify([targets].flat())}`,
        '',
      ].join('\n'),
    );
    const port = await freePort();
    const child = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: 'ignore' },
    );
    const prometheus = new TestPrometheus(dir, child, `http://127.0.0.1:${port}`);
    await waitFor('Prometheus to be ready', async () => (await fetch(`${prometheus.url}/-/ready`)).ok, 30_000);
    return prometheus;
  }

  async #api<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const response = await fetch(`${this.url}/api/v1/${path}?${new URLSearchParams(params)}`);
    const body = (await response.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${path}: ${body.error}`);
    return body.data;
  }

  /** An instant query, now or at `atSeconds` (since the epoch). */
  async query(expr: string, atSeconds?: number): Promise<PromSample[]> {
    return (
      await this.#api<{ result: PromSample[] }>('query', { query: expr, ...(atSeconds !== undefined ? { time: String(atSeconds) } : {}) })
    ).result;
  }

  async queryRange(expr: string, seconds: number): Promise<PromSample[]> {
    const end = Date.now() / 1000;
    return (
      await this.#api<{ result: PromSample[] }>('query_range', {
        query: expr,
        start: String(end - seconds),
        end: String(end),
        step: '1',
      })
    ).result;
  }

  async labelValues(label: string, match: string): Promise<string[]> {
    return this.#api<string[]>(`label/${label}/values`, { 'match[]': match });
  }

  async alerts(): Promise<PromAlert[]> {
    return (await this.#api<{ alerts: PromAlert[] }>('alerts')).alerts;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null) {
      this.#child.kill('SIGTERM');
      await once(this.#child, 'exit');
    }
    await rm(this.#dir, { recursive: true, force: true });
  }
}
