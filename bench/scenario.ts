import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pLimit from 'p-limit';

const run = promisify(execFile);
export const BENCH_IMAGE = 'outpost-test/busybox:1';
const PREFIX = 'outpost-bench';
const NETWORK = `${PREFIX}-net`;
// 10.213.96.0/20: room for 4,000 containers, apart from the test suite's subnets. --internal:
// the bench's traffic stays between its own containers.
const SUBNET = '10.213.96.0/20';

export async function docker(...args: string[]): Promise<string> {
  return (await run('docker', args, { maxBuffer: 64 * 1024 * 1024 })).stdout.trim();
}

function addressOf(index: number): string {
  const n = index + 2;
  return `10.213.${96 + Math.floor(n / 256)}.${n % 256}`;
}

export interface BenchContainer {
  name: string;
  pid: number;
}

/** Connections container i opens to container i+1: M spread as evenly as N allows. */
export function connectionsPerContainer(containers: number, connections: number): number[] {
  return Array.from({ length: containers }, (_, i) => Math.floor(connections / containers) + (i < connections % containers ? 1 : 0));
}

/**
 * N containers on one internal network, each listening on 8080 (its own namespace), and M
 * established connections in a ring: container i connects to container i+1 (to i+1 … i+fanOut,
 * in turn, with a fan-out: that many distinct links each).
 */
export async function createScenario(
  containers: number,
  connections: number,
  log: (line: string) => void,
  /** Every container labelled with the links it has (outpost.allow.*): each link judged at both ends, all allowed. */
  withPolicy = false,
  fanOut = 1,
): Promise<BenchContainer[]> {
  // Docker 20.10 may keep a stale endpoint on a removed container's network ("has active endpoints"
  // with none left): the same network, internal and on the same subnet, serves as well.
  const reusable = async () =>
    (await docker('network', 'inspect', '-f', '{{.Internal}} {{range .IPAM.Config}}{{.Subnet}}{{end}}', NETWORK).catch(() => '')) ===
    `true ${SUBNET}`;
  await removeScenario().catch(async (error: unknown) => {
    if (!(await reusable())) throw error;
  });
  await docker('image', 'inspect', BENCH_IMAGE).catch(() => {
    throw new Error(`the bench needs the test image ${BENCH_IMAGE}: run the integration tests once (npm test), which build it`);
  });
  if (!(await reusable())) await docker('network', 'create', '--internal', '--subnet', SUBNET, NETWORK);
  const limit = pLimit(4);
  const started = Date.now();
  const names = Array.from({ length: containers }, (_, i) => `${PREFIX}-${i}`);
  await Promise.all(
    names.map((name, i) => {
      const policy = withPolicy
        ? [
            '--label',
            `outpost.allow.outbound=${names[(i + 1) % containers]}:8080`,
            '--label',
            `outpost.allow.inbound=${names[(i + containers - 1) % containers]}:8080`,
          ]
        : [];
      return limit(() =>
        docker(
          'run',
          '-d',
          '--name',
          name,
          '--network',
          NETWORK,
          '--ip',
          addressOf(i),
          '--label',
          'outpost-bench=1',
          ...policy,
          BENCH_IMAGE,
          'nc',
          '-ll',
          '-p',
          '8080',
          '-e',
          'cat',
        ),
      );
    }),
  );
  log(`${containers} containers started in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const perContainer = connectionsPerContainer(containers, connections);
  await Promise.all(
    names.map((name, i) =>
      limit(async () => {
        const k = perContainer[i]!;
        if (k === 0) return;
        const peers = Array.from({ length: k }, (_, j) => addressOf((i + 1 + (j % fanOut)) % containers));
        // One at a time: busybox nc listens with a backlog of 2, and refuses while it re-listens
        // (several clients of one server at once, with a fan-out): a refused client tries again.
        // (nc -e sleep: the connection stays open with sleep holding it; nc fails at once when refused.)
        await docker(
          'exec',
          '-d',
          name,
          'sh',
          '-c',
          `for peer in ${peers.join(' ')}; do (while ! nc $peer 8080 -e sleep 1000000; do sleep 1; done) & sleep 0.2; done; wait`,
        );
      }),
    ),
  );
  const pids = await docker('inspect', '-f', '{{.State.Pid}}', ...names);
  return pids.split('\n').map((pid, i) => ({ name: names[i]!, pid: Number(pid) }));
}

export async function removeScenario(): Promise<void> {
  const ids = await docker('ps', '-aq', '--filter', 'label=outpost-bench=1');
  if (ids) await docker('rm', '-f', ...ids.split('\n'));
  // The engine may still be detaching the last endpoints for a moment.
  for (let attempt = 0; attempt < 10; attempt++) {
    const exists = await docker('network', 'inspect', NETWORK).then(
      () => true,
      () => false,
    );
    if (!exists) return;
    await docker('network', 'rm', NETWORK).catch(() => new Promise((r) => setTimeout(r, 500)));
  }
  throw new Error(`cannot remove the network ${NETWORK}`);
}
