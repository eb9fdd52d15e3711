import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../errors.js';
import { SOCK_DIAG_RECORD_SIZE } from './sockDiagRecords.js';

/** The native addon of native/sock_diag.c, built by node-gyp at install. */
export interface SockDiagAddon {
  /** Enters the namespace of the given ns/net file on a thread of its own and dumps its TCP sockets. */
  readNamespace(netNamespacePath: string, stateMask: number): Promise<Buffer>;
  recordSize: number;
}

// The same from src/sockets (tests) and dist/sockets (the program).
export const DEFAULT_ADDON_PATH = fileURLToPath(new URL('../../native/build/Release/sock_diag.node', import.meta.url));

/** The addon, or why it cannot be used (not built, built for another Node, another record layout). */
export function loadSockDiagAddon(path: string = DEFAULT_ADDON_PATH): SockDiagAddon | Error {
  try {
    const addon = createRequire(import.meta.url)(path) as Partial<SockDiagAddon>;
    if (typeof addon.readNamespace !== 'function' || addon.recordSize !== SOCK_DIAG_RECORD_SIZE) {
      return new Error(`${path} is not the addon this version expects (record size ${String(addon.recordSize)}, want ${SOCK_DIAG_RECORD_SIZE})`);
    }
    return addon as SockDiagAddon;
  } catch (error) {
    return new Error(`cannot load ${path}: ${errorMessage(error).split('\n')[0]}`);
  }
}
