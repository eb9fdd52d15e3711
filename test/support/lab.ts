import { test as base } from 'vitest';
import type { Config } from '../../src/config.js';
import { Scenario, ensureTestImage } from './docker.js';
import { startTestExporter, type TestExporter } from './exporter.js';
import { startExporterProcess, type ExporterProcess } from './exporterProcess.js';

/**
 * What one integration test file makes — its Docker objects, the exporters it starts, anything
 * else it hands over — removed after the file's last test, whatever happened, the last made first.
 */
export class Lab {
  readonly #cleanups: (() => unknown)[] = [];

  /** Runs `cleanup` after the file, before what was handed over earlier. */
  defer(cleanup: () => unknown): void {
    this.#cleanups.push(cleanup);
  }

  /** Containers and networks named outpost-it-<name>-…, on `dockerHost` (default: this machine's engine). */
  scenario(name: string, dockerHost?: string): Scenario {
    const scenario = new Scenario(name, dockerHost);
    this.defer(() => scenario.cleanup());
    return scenario;
  }

  /** outpost in this process, on a free loopback port. */
  async exporter(overrides: Partial<Config> = {}): Promise<TestExporter> {
    const exporter = await startTestExporter(overrides);
    this.defer(() => exporter.close());
    return exporter;
  }

  /** outpost as its own process (bin/outpost), for what only a process shows: its memory, its exit. */
  async exporterProcess(args: string[] = []): Promise<ExporterProcess> {
    const exporter = await startExporterProcess(args);
    this.defer(() => exporter.child.kill('SIGTERM'));
    return exporter;
  }

  /** Every cleanup runs, even after one fails; the failures are reported together. */
  async close(): Promise<void> {
    const errors: unknown[] = [];
    for (const cleanup of this.#cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, `${errors.length} cleanup(s) of the integration test failed`);
  }
}

/**
 * vitest's `test` with the file's Lab: `test.beforeAll(async ({ lab }) => …)` builds the
 * scenario, and the Lab is closed after the file's last test.
 */
// vitest reads a fixture's needs from its first parameter, which must be a destructuring pattern.
// eslint-disable-next-line no-empty-pattern
export const test = base.extend('lab', { scope: 'file' }, async ({}, { onCleanup }) => {
  await ensureTestImage();
  const lab = new Lab();
  onCleanup(() => lab.close());
  return lab;
});
