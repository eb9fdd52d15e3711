import { Collector, type CollectorOptions } from '../../src/collection/collection.js';
import { createLogger } from '../../src/base/log.js';
import type { Container } from '../../src/inventory/container.js';
import { HostNamespace } from '../../src/namespaces/hostNamespace.js';
import { ExpectedLinks } from '../../src/policy/expectedLinks.js';
import { ProcfsSocketSource } from '../../src/sockets/procfsSource.js';

/**
 * A Collector in the test's own process over these containers (an inventory that lists just
 * them), reading the host's /proc, with the default policy; `options` adds or replaces parts.
 */
export function procfsCollector(containers: readonly Container[], options: Partial<CollectorOptions> = {}): Collector {
  const log = options.log ?? createLogger('error', 'json');
  return new Collector({
    inventory: { snapshot: () => Promise.resolve([...containers]), networks: () => [] },
    source: new ProcfsSocketSource({ procfsPath: '/proc' }),
    procfsPath: '/proc',
    hostNamespace: new HostNamespace({ procfsPath: '/proc', pid: 1, log }),
    log,
    policy: new ExpectedLinks({ log }),
    connectionsRetentionMs: 60_000,
    maxSeriesPerContainer: 100,
    ...options,
  });
}
