import { readFile, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { NetNamespace } from '../namespaces/netNamespaces.js';
import { readNetNamespaceId } from '../namespaces/netNamespaces.js';

const CONTAINER_ID = /[0-9a-f]{64}/g;

/**
 * The container a process belongs to, by the id in its cgroup path: /docker/<id> (cgroup v1
 * and v2 cgroupfs), /system.slice/docker-<id>.scope (systemd), /../<id> (a cgroup namespace).
 */
export function containerIdOfCgroup(cgroupFile: string, knownIds: ReadonlySet<string>): string | undefined {
  for (const match of cgroupFile.matchAll(CONTAINER_ID)) if (knownIds.has(match[0])) return match[0];
  return undefined;
}

/** "socket:[12345]" → 12345; anything else → undefined. */
export function socketInodeOfLink(link: string): number | undefined {
  if (!link.startsWith('socket:[') || !link.endsWith(']')) return undefined;
  const inode = Number(link.slice(8, -1));
  return Number.isSafeInteger(inode) ? inode : undefined;
}

async function socketInodesOfProcess(procfsPath: string, pid: string): Promise<number[]> {
  const fdDir = join(procfsPath, pid, 'fd');
  let fds: string[];
  try {
    fds = await readdir(fdDir);
  } catch {
    return []; // exited, or not ours to read
  }
  const links = await Promise.all(fds.map((fd) => readlink(join(fdDir, fd)).catch(() => '')));
  const inodes: number[] = [];
  for (const link of links) {
    const inode = socketInodeOfLink(link);
    if (inode !== undefined) inodes.push(inode);
  }
  return inodes;
}

/**
 * For namespaces shared by several containers (or with the host): socket inode → container id,
 * from the descriptors of every process of those containers — not only their main process.
 * One pass over /proc serves all the namespaces asked for.
 */
export async function readSocketOwners(procfsPath: string, namespaces: readonly NetNamespace[]): Promise<Map<string, Map<number, string>>> {
  const owners = new Map<string, Map<number, string>>();
  if (namespaces.length === 0) return owners;
  const wanted = new Map<string, Set<string>>();
  for (const ns of namespaces) {
    owners.set(ns.id, new Map());
    wanted.set(ns.id, new Set(ns.containers.map((c) => c.id)));
  }

  const entries = await readdir(procfsPath);
  await Promise.all(
    entries.map(async (pid) => {
      if (!/^\d+$/.test(pid)) return;
      let nsId: string | undefined;
      try {
        nsId = readNetNamespaceId(procfsPath, Number(pid));
      } catch {
        return; // not ours to read
      }
      const ids = nsId === undefined ? undefined : wanted.get(nsId);
      if (!ids || ids.size === 0) return;
      let cgroup: string;
      try {
        cgroup = await readFile(join(procfsPath, pid, 'cgroup'), 'utf8');
      } catch {
        return;
      }
      const containerId = containerIdOfCgroup(cgroup, ids);
      if (!containerId) return; // a host process, or one entered by nsenter
      const map = nsId === undefined ? undefined : owners.get(nsId);
      if (!map) return;
      for (const inode of await socketInodesOfProcess(procfsPath, pid)) {
        // A descriptor inherited across containers is rare; the first holder keeps it.
        if (!map.has(inode)) map.set(inode, containerId);
      }
    }),
  );
  return owners;
}
