import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { waitFor } from './docker.js';
import { freePort } from './net.js';

// As users start it: the launcher with its memory settings (bin/outpost → node dist/main.js).
const LAUNCHER = new URL('../../bin/outpost', import.meta.url).pathname;

export interface ExporterProcess {
  child: ChildProcess;
  url: string;
  /** Resident memory of the process now. */
  rssKiB: () => number;
}

/** outpost (bin/outpost) as its own process, so its memory is its own. */
export async function startExporterProcess(args: string[] = []): Promise<ExporterProcess> {
  const port = await freePort();
  const child = spawn(LAUNCHER, [`--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', ...args], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await waitFor('outpost to listen', async () => (await fetch(`${url}/healthz`)).ok);
  const rssKiB = () => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]);
  return { child, url, rssKiB };
}
