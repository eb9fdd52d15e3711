import { readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { readNamespaceAddresses } from '../net/hostAddresses.js';

/**
 * The Docker host's network namespace, seen through one of its processes (--host.pid, default 1)
 * under --procfs.path: its id (where host-network containers live) and its addresses (which
 * remote addresses are the host itself).
 */
export class HostNamespace {
  readonly #procfsPath: string;
  readonly #pid: number;
  readonly #log: Logger;
  #addressesFailed = false;

  constructor(options: { procfsPath: string; pid: number; log: Logger }) {
    this.#procfsPath = options.procfsPath;
    this.#pid = options.pid;
    this.#log = options.log;
  }

  /** Its id (`net:[…]`), or undefined when it cannot be read. */
  id(): Promise<string | undefined> {
    return readlink(join(this.#procfsPath, String(this.#pid), 'ns', 'net')).catch(() => undefined);
  }

  /** Every address of the namespace; none when they cannot be read (said once, not per scrape). */
  async addresses(): Promise<string[]> {
    try {
      const addresses = await readNamespaceAddresses(this.#procfsPath, this.#pid);
      this.#addressesFailed = false;
      return addresses;
    } catch (error) {
      if (!this.#addressesFailed) {
        this.#addressesFailed = true;
        this.#log.warn(
          { err: error },
          `cannot read the host's addresses (${errorMessage(error)}); connections to the host will show an empty remote_container`,
        );
      }
      return [];
    }
  }
}
