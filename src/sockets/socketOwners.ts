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

/** One process of a container, with the inodes of the sockets it holds. */
interface ContainerProcess {
  pid: number;
  namespaceId: string;
  containerId: string;
  inodes: number[];
}

/** Each process of the containers of `namespaces` (by its network namespace and cgroup): one pass over /proc. */
async function visitContainerProcesses(
  procfsPath: string,
  namespaces: readonly NetNamespace[],
  visit: (process: ContainerProcess) => void,
): Promise<void> {
  if (namespaces.length === 0) return;
  const wanted = new Map<string, Set<string>>();
  for (const ns of namespaces) wanted.set(ns.id, new Set(ns.containers.map((c) => c.id)));
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
      if (nsId === undefined || !ids || ids.size === 0) return;
      let cgroup: string;
      try {
        cgroup = await readFile(join(procfsPath, pid, 'cgroup'), 'utf8');
      } catch {
        return;
      }
      const containerId = containerIdOfCgroup(cgroup, ids);
      if (!containerId) return; // a host process, or one entered by nsenter
      visit({ pid: Number(pid), namespaceId: nsId, containerId, inodes: await socketInodesOfProcess(procfsPath, pid) });
    }),
  );
}

/**
 * For namespaces shared by several containers (or with the host): socket inode → container id,
 * from the descriptors of every process of those containers — not only their main process.
 * One pass over /proc serves all the namespaces asked for.
 */
export async function readSocketOwners(procfsPath: string, namespaces: readonly NetNamespace[]): Promise<Map<string, Map<number, string>>> {
  const owners = new Map(namespaces.map((ns) => [ns.id, new Map<number, string>()]));
  await visitContainerProcesses(procfsPath, namespaces, ({ namespaceId, containerId, inodes }) => {
    const map = owners.get(namespaceId);
    if (!map) return;
    // A descriptor inherited across containers is rare; the first holder keeps it.
    for (const inode of inodes) if (!map.has(inode)) map.set(inode, containerId);
  });
  return owners;
}

/** Socket inode → the pid of a process of a container that holds it, per namespace: who holds a socket now. */
export async function readSocketHolders(
  procfsPath: string,
  namespaces: readonly NetNamespace[],
): Promise<Map<string, Map<number, number>>> {
  const holders = new Map(namespaces.map((ns) => [ns.id, new Map<number, number>()]));
  await visitContainerProcesses(procfsPath, namespaces, ({ pid, namespaceId, inodes }) => {
    const map = holders.get(namespaceId);
    if (!map) return;
    // Shared by a parent and the children it forked: the lowest pid, the parent, is the one that made it.
    for (const inode of inodes) if ((map.get(inode) ?? Number.POSITIVE_INFINITY) > pid) map.set(inode, pid);
  });
  return holders;
}
