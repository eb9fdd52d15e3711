import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../base/errors.js';

/** A file of native/, from src/sockets (tests) and dist/sockets (the program) alike. */
export const nativePath = (path: string): string => fileURLToPath(new URL(`../../native/${path}`, import.meta.url));

/**
 * A native addon of native/, built by node-gyp at install, or why it cannot be used: not built,
 * built for another Node, or for another record layout (`entry` missing, `recordSize` other).
 */
export function loadNativeAddon<T extends { recordSize: number }>(path: string, entry: keyof T & string, recordSize: number): T | Error {
  try {
    const addon = createRequire(import.meta.url)(path) as Partial<Record<string, unknown>>;
    if (typeof addon[entry] !== 'function' || addon.recordSize !== recordSize) {
      return new Error(`${path} is not the addon this version expects (record size ${String(addon.recordSize)}, want ${recordSize})`);
    }
    return addon as unknown as T;
  } catch (error) {
    return new Error(`cannot load ${path}: ${errorMessage(error).split('\n')[0]}`);
  }
}
