import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { containerIdOfCgroup } from '../../../src/sockets/socketOwners.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

describe('containerIdOfCgroup (real /proc/<pid>/cgroup files)', () => {
  const docker = '8fc9067c1ab50a963e87b400602aa842cbbc93f370810f504ff435c51b2fdff2';
  const podman = '76f43b077257910b60df65a301e63c2cfd52115cf9a4c7cda5a6634e41f87148';
  const known = new Set([docker, podman]);

  it("finds Docker's container in /docker/<id>", () => {
    expect(fixture('docker.cgroup')).toContain(`/docker/${docker}`);
    expect(containerIdOfCgroup(fixture('docker.cgroup'), known)).toBe(docker);
  });

  it("finds Podman's container in /libpod_parent/libpod-<id>", () => {
    expect(fixture('podman.cgroup')).toContain(`/libpod_parent/libpod-${podman}`);
    expect(containerIdOfCgroup(fixture('podman.cgroup'), known)).toBe(podman);
  });

  it('names no container whose id is not known', () => {
    expect(containerIdOfCgroup(fixture('podman.cgroup'), new Set([docker]))).toBeUndefined();
  });
});
