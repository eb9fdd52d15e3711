import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FLAGS, envVarOf } from '../../src/config.js';
import { type Scenario, kernelSockets, pidOf, waitFor } from '../support/docker.js';
import { test } from '../support/lab.js';
import { freePort } from '../support/net.js';

const MAIN = new URL('../../dist/main.js', import.meta.url).pathname;

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 10_000 });
}

interface Running {
  child: ChildProcess;
  url: string;
  stderr: () => string;
}

async function start(args: string[], env: Record<string, string> = {}): Promise<Running> {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN, `--web.listen-address=127.0.0.1:${port}`, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  await waitFor('outpost to listen', async () => (await fetch(`${url}/healthz`)).ok);
  return { child, url, stderr: () => stderr };
}

describe('command line', () => {
  it.each([
    [['--web.listen-address=nope'], {}, '--web.listen-address'],
    [['--web.listen-address=:70000'], {}, '--web.listen-address'],
    [['--log.format=xml'], {}, '--log.format'],
    [['--procfs.path=relative/proc'], {}, '--procfs.path'],
    [['--docker.host=ftp://example'], {}, '--docker.host'],
    [['--web.telemetry-path=/healthz'], {}, '--web.telemetry-path'],
    [['--docker.timeout=soon'], {}, '--docker.timeout'],
    [['--no-such-flag'], {}, '--no-such-flag'],
    [[], { OUTPOST_LOG_LEVEL: 'loud' }, 'OUTPOST_LOG_LEVEL'],
  ])('rejects %j %j with exit code 2 and a message naming %s', (args, env, named) => {
    const result = run(args, env);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(named);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('refuses an invalid --policy.file with exit code 2, naming the file, line and problem, before any port opens', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'outpost-cli-'));
    const file = join(dir, 'policy.yaml');
    await writeFile(file, 'rules:\n  - from: {container: web}\n    to: {cidr: 10.0.0.0/99}\n');
    try {
      const port = await freePort();
      const result = run([`--web.listen-address=127.0.0.1:${port}`, `--policy.file=${file}`]);
      expect(result.status).toBe(2);
      expect(result.stderr.trim()).toBe(
        `outpost: invalid --policy.file: ${file}:3: rules[0].to.cidr: expected an IP address or a CIDR such as 10.0.0.0/8`,
      );
      const missing = run([`--web.listen-address=127.0.0.1:${port}`, `--policy.file=${join(dir, 'nothing.yaml')}`]);
      expect(missing.status).toBe(2);
      expect(missing.stderr).toContain('nothing.yaml: cannot read it: ENOENT');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('lists every flag and its environment variable in --help', () => {
    const result = run(['--help']);
    expect(result.status).toBe(0);
    for (const def of FLAGS) {
      expect(result.stdout).toContain(`--${def.flag}`);
      expect(result.stdout).toContain(envVarOf(def.flag));
    }
  });

  it('reads a setting from its environment variable, and lets the flag win over it', async () => {
    const fromEnv = await start([], { OUTPOST_WEB_TELEMETRY_PATH: '/env' });
    const both = await start(['--web.telemetry-path=/flag'], { OUTPOST_WEB_TELEMETRY_PATH: '/env' });
    try {
      expect((await fetch(`${fromEnv.url}/env`)).status).toBe(200);
      expect((await fetch(`${fromEnv.url}/metrics`)).status).toBe(404);
      expect((await fetch(`${both.url}/flag`)).status).toBe(200);
      expect((await fetch(`${both.url}/env`)).status).toBe(404);
    } finally {
      for (const r of [fromEnv, both]) {
        r.child.kill('SIGTERM');
        await once(r.child, 'exit');
      }
    }
  });
});

describe('a running exporter', () => {
  let scenario: Scenario;
  let running: Running;

  test.beforeAll(async ({ lab }) => {
    scenario = lab.scenario('cli');
    const net = await scenario.network('net', ['10.213.17.0/24']);
    const server = await scenario.run('server', ['--network', net], ['nc', '-ll', '-p', '8080', '-e', 'cat']);
    await scenario.run('client', ['--network', net], ['sh', '-c', `sleep 100000 | nc ${server} 8080`]);
    const pid = await pidOf(server);
    await waitFor('the client connected', async () => (await kernelSockets(pid)).some((s) => s.state === 'established'));
    running = await start(['--log.format=json']);
    lab.defer(() => {
      if (running.child.exitCode === null) running.child.kill('SIGKILL');
    });
  });

  it('serves a landing page linking every endpoint', async () => {
    const response = await fetch(`${running.url}/`);
    expect(response.headers.get('content-type')).toContain('text/html');
    const html = await response.text();
    for (const href of ['/map', '/metrics', '/connections', '/policy', '/policy/suggest', '/healthz', '/readyz'])
      expect(html).toContain(`href="${href}"`);
  });

  it('is ready when Docker answers', async () => {
    expect((await fetch(`${running.url}/readyz`)).status).toBe(200);
  });

  it('passes promtool check metrics on a live exposition with containers in it', async () => {
    const text = await (await fetch(`${running.url}/metrics`)).text();
    expect(text).toContain('container_tcp_established{');
    expect(text).toContain('process_cpu_seconds_total');
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
  });

  it('logs JSON when asked to', () => {
    const first = running.stderr().split('\n')[0]!;
    expect(JSON.parse(first)).toMatchObject({ level: 'info', msg: 'outpost listening' });
  });

  it('stops cleanly on SIGTERM within 2 s', async () => {
    // A scrape connection left open (keep-alive) must not hold the process.
    await fetch(`${running.url}/metrics`);
    const started = Date.now();
    running.child.kill('SIGTERM');
    const [code] = (await once(running.child, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe('an exporter whose Docker API is unreachable', () => {
  it('answers 200 with outpost_up 0, is not ready, and says why once', async () => {
    const running = await start(['--docker.host=unix:///run/outpost-it-nothing-here.sock']);
    try {
      for (let i = 0; i < 3; i++) {
        const response = await fetch(`${running.url}/metrics`);
        expect(response.status).toBe(200);
        expect(await response.text()).toMatch(/^outpost_up 0$/m);
      }
      const ready = await fetch(`${running.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.text()).toContain('outpost-it-nothing-here.sock');
      expect(running.stderr().match(/Docker API unreachable/g)).toHaveLength(1);
      expect(running.stderr()).toContain('ENOENT');
    } finally {
      running.child.kill('SIGTERM');
      await once(running.child, 'exit');
    }
  });
});
