import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

// In a process of its own: the require cache is per process, and other tests load dockerode whole.
function loadedWith(script: string): string {
  return execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: new URL('../../../', import.meta.url),
    encoding: 'utf8',
  });
}

describe('importing the Docker client', () => {
  it('loads dockerode without ssh2 and gRPC, which outpost does not use', () => {
    const out = loadedWith(`
      import { createRequire } from 'node:module';
      await import('./dist/inventory/dockerClient.js');
      const files = Object.keys(createRequire(import.meta.url).cache);
      const real = (name) => files.filter((f) => f.includes('/node_modules/' + name + '/')).length;
      console.log(JSON.stringify({ dockerode: real('dockerode') > 1, ssh2: real('ssh2'), grpc: real('@grpc/grpc-js'), protoLoader: real('@grpc/proto-loader') }));
    `);
    // One file each: the stand-in, at the path dockerode would load; none of their code.
    expect(JSON.parse(out)).toEqual({ dockerode: true, ssh2: 1, grpc: 1, protoLoader: 1 });
  });

  it('says what is missing if dockerode ever uses one', () => {
    const out = loadedWith(`
      import { createRequire } from 'node:module';
      await import('./dist/inventory/dockerClient.js');
      const require = createRequire(createRequire(import.meta.url).resolve('docker-modem'));
      try { new (require('ssh2').Client)(); } catch (error) { console.log(error.message); }
    `);
    expect(out).toMatch(/^outpost does not load ssh2 \(Docker over ssh:\/\/ is not supported\): ssh2\.Client is not available/);
  });

  it('still answers with a working dockerode client', () => {
    const out = loadedWith(`
      const { createDockerClient } = await import('./dist/inventory/dockerClient.js');
      const client = createDockerClient({ kind: 'socket', socketPath: '/nonexistent/docker.sock' }, 1000);
      try { await client.ping(); } catch (error) { console.log(error.code); }
    `);
    expect(out.trim()).toBe('ENOENT');
  });
});
