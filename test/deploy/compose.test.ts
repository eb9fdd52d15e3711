import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { LEAST_PRIVILEGE } from '../support/leastPrivilege.js';

const repo = (path: string) => new URL(`../../${path}`, import.meta.url).pathname;

interface Service {
  image?: string;
  init?: boolean;
  read_only?: boolean;
  cap_drop?: string[];
  cap_add?: string[];
  pid?: string;
  security_opt?: string[];
  command?: string[];
  volumes?: string[];
}

const compose = parse(readFileSync(repo('docker-compose.yml'), 'utf8')) as { services: Record<string, Service> };

describe('docker-compose.yml', () => {
  it('validates (docker-compose config)', () => {
    const result = spawnSync('docker-compose', ['-f', repo('docker-compose.yml'), 'config', '-q'], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('runs outpost with exactly the least privileges the image test proves', () => {
    const outpost = compose.services.outpost!;
    const flags = [
      ...(outpost.init ? ['--init'] : []),
      ...(outpost.read_only ? ['--read-only'] : []),
      ...(outpost.cap_drop ?? []).flatMap((c) => ['--cap-drop', c]),
      ...(outpost.cap_add ?? []).flatMap((c) => ['--cap-add', c]),
      ...(outpost.pid ? ['--pid', outpost.pid] : []),
      ...(outpost.security_opt ?? []).map((o) => o.replace(/:true$/, '')).flatMap((o) => ['--security-opt', o]),
      ...(outpost.volumes ?? []).filter((v) => !v.includes('docker.sock')).flatMap((v) => ['-v', v]),
    ];
    expect(flags).toEqual([...LEAST_PRIVILEGE]);
    expect(outpost.volumes).toContain('/var/run/docker.sock:/var/run/docker.sock:ro');
    expect(outpost.command).toEqual(['--procfs.path=/host/proc']);
  });

  it.each(['README.md', 'docs/deploy-and-security.md'])('is what the docker run line of %s asks for', (page) => {
    const text = readFileSync(repo(page), 'utf8');
    const lines = [
      ...text.matchAll(
        /^docker run -d --name outpost (.*) -v \/var\/run\/docker\.sock:\/var\/run\/docker\.sock:ro -p 9057:9057 outpost --procfs\.path=\/host\/proc$/gm,
      ),
    ];
    expect(lines.length).toBeGreaterThan(0);
    for (const [, flags] of lines) expect(flags!.split(' ')).toEqual([...LEAST_PRIVILEGE]);
  });

  it('mounts files that exist in the repository, where Prometheus and Grafana look for them', () => {
    for (const service of Object.values(compose.services)) {
      for (const volume of service.volumes ?? []) {
        const [source] = volume.split(':');
        if (source!.startsWith('./')) expect(existsSync(repo(source!)), volume).toBe(true);
      }
    }
    const grafana = compose.services.grafana!.volumes!;
    const provider = parse(readFileSync(repo('grafana/provisioning/dashboards/outpost.yaml'), 'utf8')) as {
      providers: { options: { path: string } }[];
    };
    expect(grafana).toContain(`./grafana/dashboards:${provider.providers[0]!.options.path}:ro`);
  });

  it('has a Prometheus configuration promtool accepts, loading the shipped rules and scraping job outpost', () => {
    const config = readFileSync(repo('deploy/prometheus.yml'), 'utf8');
    expect(config).toContain('job_name: outpost');
    // The container paths, pointed at the repository, for promtool on this machine.
    const dir = mkdtempSync(join(tmpdir(), 'outpost-compose-'));
    const local = join(dir, 'prometheus.yml');
    writeFileSync(local, config.replace('/etc/prometheus/rules/', `${repo('grafana/rules')}/`));
    const out = execFileSync('promtool', ['check', 'config', local], { encoding: 'utf8' });
    expect(out).toContain('SUCCESS: 1 rule files found');
  });
});
