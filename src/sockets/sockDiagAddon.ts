import { loadNativeAddon, nativePath } from '../base/nativeAddon.js';
import { SOCK_DIAG_RECORD_SIZE } from './sockDiagRecords.js';

/** The native addon of native/sock_diag.c, built by node-gyp at install. */
export interface SockDiagAddon {
  /** Enters the namespace of the given ns/net file on a thread of its own and dumps its TCP sockets. */
  readNamespace(netNamespacePath: string, stateMask: number): Promise<Buffer>;
  recordSize: number;
}

export const DEFAULT_ADDON_PATH = nativePath('build/Release/sock_diag.node');

export function loadSockDiagAddon(path: string = DEFAULT_ADDON_PATH): SockDiagAddon | Error {
  return loadNativeAddon<SockDiagAddon>(path, 'readNamespace', SOCK_DIAG_RECORD_SIZE);
}
