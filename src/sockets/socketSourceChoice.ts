import type Docker from 'dockerode';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { ExecSocketSource } from './execSource.js';
import { NetlinkSocketSource } from './netlinkSource.js';
import { ProcfsSocketSource } from './procfsSource.js';
import { DEFAULT_ADDON_PATH, loadSockDiagAddon } from './sockDiagAddon.js';
import { ALL_TCP_STATES_MASK } from './sockDiagRecords.js';
import type { SocketSource } from './socketSource.js';

export const SOURCE_CHOICES = ['auto', 'netlink', 'procfs', 'exec'] as const;
export type SourceChoice = (typeof SOURCE_CHOICES)[number];

export interface SourceChoiceOptions {
  choice: SourceChoice;
  procfsPath: string;
  docker: Docker;
  log: Logger;
  /** Where the sock_diag addon is; tests point it elsewhere. */
  addonPath?: string;
}

/**
 * The socket source `--collector.source` asks for. `auto` and `netlink` take netlink when the
 * addon loads and this process may enter a namespace (tried on its own, which needs the same
 * CAP_SYS_ADMIN as any other); otherwise procfs, said in one log line with the reason.
 */
export async function chooseSocketSource(options: SourceChoiceOptions): Promise<SocketSource> {
  const { choice, procfsPath, docker, log } = options;
  if (choice === 'procfs') return new ProcfsSocketSource({ procfsPath });
  if (choice === 'exec') return new ExecSocketSource({ docker });

  const addon = loadSockDiagAddon(options.addonPath ?? DEFAULT_ADDON_PATH);
  let reason: string;
  if (addon instanceof Error) {
    reason = `the sock_diag addon is not usable (${addon.message}; rebuild it with "npm rebuild" or "npm ci")`;
  } else {
    try {
      await addon.readNamespace('/proc/self/ns/net', ALL_TCP_STATES_MASK);
      return new NetlinkSocketSource({ addon, procfsPath });
    } catch (error) {
      reason = `entering a network namespace failed (${errorMessage(error)}; it needs CAP_SYS_ADMIN)`;
    }
  }
  log[choice === 'netlink' ? 'warn' : 'info']({ requested: choice, source: 'procfs' }, `netlink socket source unavailable: ${reason}; reading procfs instead`);
  return new ProcfsSocketSource({ procfsPath });
}
