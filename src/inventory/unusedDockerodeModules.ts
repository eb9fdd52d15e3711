import { createRequire, Module } from 'node:module';

/**
 * dockerode loads, the moment it is imported, two clients outpost never uses: ssh2 (for
 * DOCKER_HOST=ssh://, which outpost does not accept) and gRPC (for BuildKit sessions): 6 MB of
 * resident memory, measured (docs/performance.md, "Memory"). This module stands in for them in the
 * require cache, so that importing dockerode does not load them; it must be imported before
 * dockerode. Any use of them throws an error saying so.
 */
const require = createRequire(import.meta.url);

/** A module whose every export throws, when called or constructed, an error naming it. */
const unused = (name: string, why: string): object =>
  new Proxy(
    {},
    {
      get(_target, key) {
        if (typeof key !== 'string' || key === 'then' || key === '__esModule') return undefined;
        // A function, not a throw: docker-modem reads ssh2's Client as it loads.
        return function unavailable(): never {
          throw new Error(`outpost does not load ${name} (${why}): ${name}.${key} is not available`);
        };
      },
    },
  );

/** Puts `exports` in the require cache as the module `request` resolves to from `from`'s package. */
function standIn(from: string, request: string, exports: object): void {
  let path: string;
  try {
    path = createRequire(require.resolve(from)).resolve(request);
  } catch {
    return; // not installed (a later dockerode without it): nothing to stand in for
  }
  const module = new Module(path);
  module.filename = path;
  module.loaded = true;
  module.exports = exports;
  require.cache[path] = module;
}

standIn('docker-modem', 'ssh2', unused('ssh2', 'Docker over ssh:// is not supported'));
standIn('dockerode', '@grpc/grpc-js', unused('@grpc/grpc-js', 'BuildKit sessions are not used'));
standIn('dockerode', '@grpc/proto-loader', unused('@grpc/proto-loader', 'BuildKit sessions are not used'));
