import type { ResolvedAddress } from './dnsMessage.js';

/** What one name resolved to for a container, and until when the answer holds. */
interface NameEntry {
  expiresMs: number;
}

/** A name a container resolved to an address it is connected to (container_peer_name_info). */
export interface PeerNameRow {
  containerId: string;
  remoteAddress: string;
  name: string;
}

export interface PeerNamesOptions {
  /** Most (address, name) pairs kept per container (--dns.max-names-per-container). */
  maxNamesPerContainer: number;
  /** How long past its TTL an answer still names its address (a connect a little after expiry is common). */
  graceMs: number;
}

/**
 * Per container, the names its DNS answers gave each address: kept for the answer's TTL (and
 * the grace), longer while the container is connected to the address, at most
 * maxNamesPerContainer (the entry expiring first and not in use makes room; when all are in use,
 * the new name is not kept and counted in `dropped`).
 */
export class PeerNames {
  readonly #options: PeerNamesOptions;
  /** container id → address → name → entry. */
  readonly #byContainer = new Map<string, Map<string, Map<string, NameEntry>>>();
  readonly #sizes = new Map<string, number>();
  /** container id → addresses it was connected to at the last retain(). */
  #connected: ReadonlyMap<string, ReadonlySet<string>> = new Map();
  /** Names not kept because the container's were all in use, since start. */
  dropped = 0;

  constructor(options: PeerNamesOptions) {
    this.#options = options;
  }

  /** The addresses one answer received by the container gave, from when it was received. */
  learn(containerId: string, resolved: readonly ResolvedAddress[], receivedMs: number): void {
    for (const { address, names, ttlSeconds } of resolved) {
      const name = names[0];
      if (name === undefined) continue;
      const expiresMs = receivedMs + ttlSeconds * 1000;
      let byAddress = this.#byContainer.get(containerId);
      if (!byAddress) {
        byAddress = new Map();
        this.#byContainer.set(containerId, byAddress);
      }
      const known = byAddress.get(address)?.get(name);
      if (known) {
        known.expiresMs = Math.max(known.expiresMs, expiresMs);
        continue;
      }
      if ((this.#sizes.get(containerId) ?? 0) >= this.#options.maxNamesPerContainer && !this.#makeRoom(containerId, byAddress)) {
        this.dropped++;
        continue;
      }
      let byName = byAddress.get(address);
      if (!byName) {
        byName = new Map();
        byAddress.set(address, byName);
      }
      byName.set(name, { expiresMs });
      this.#sizes.set(containerId, (this.#sizes.get(containerId) ?? 0) + 1);
    }
  }

  /** The names that resolved `address` for the container and still hold at `nowMs` (TTL and grace, or a connection open). */
  namesOf(containerId: string, address: string, nowMs: number): string[] {
    const byName = this.#byContainer.get(containerId)?.get(address);
    if (!byName) return [];
    const inUse = this.#connected.get(containerId)?.has(address) ?? false;
    const names: string[] = [];
    for (const [name, entry] of byName) if (inUse || entry.expiresMs + this.#options.graceMs >= nowMs) names.push(name);
    return names.sort();
  }

  /**
   * Forgets the containers not in `connected` and the answers past TTL and grace, but for the
   * addresses each container is connected to now.
   */
  retain(connected: ReadonlyMap<string, ReadonlySet<string>>, nowMs: number): void {
    this.#connected = connected;
    for (const [containerId, byAddress] of this.#byContainer) {
      const inUse = connected.get(containerId);
      if (!inUse) {
        this.#byContainer.delete(containerId);
        this.#sizes.delete(containerId);
        continue;
      }
      for (const [address, byName] of byAddress) {
        if (inUse.has(address)) continue;
        for (const [name, entry] of byName)
          if (entry.expiresMs + this.#options.graceMs < nowMs) this.#remove(containerId, byAddress, address, name);
      }
    }
  }

  /** Per container, the names of the addresses of `connections` (each container id with the addresses it is connected to). */
  rows(connections: ReadonlyMap<string, ReadonlySet<string>>, nowMs: number): PeerNameRow[] {
    const rows: PeerNameRow[] = [];
    for (const [containerId, addresses] of connections) {
      if (!this.#byContainer.has(containerId)) continue;
      for (const remoteAddress of addresses) {
        for (const name of this.namesOf(containerId, remoteAddress, nowMs)) rows.push({ containerId, remoteAddress, name });
      }
    }
    return rows;
  }

  /** Names kept now, over every container. */
  get size(): number {
    let n = 0;
    for (const size of this.#sizes.values()) n += size;
    return n;
  }

  /** Drops the entry that expires first among those whose address is not in use; false when every one is. */
  #makeRoom(containerId: string, byAddress: Map<string, Map<string, NameEntry>>): boolean {
    const inUse = this.#connected.get(containerId);
    let first: { address: string; name: string; expiresMs: number } | undefined;
    for (const [address, byName] of byAddress) {
      if (inUse?.has(address)) continue;
      for (const [name, { expiresMs }] of byName) if (!first || expiresMs < first.expiresMs) first = { address, name, expiresMs };
    }
    if (!first) return false;
    this.#remove(containerId, byAddress, first.address, first.name);
    return true;
  }

  #remove(containerId: string, byAddress: Map<string, Map<string, NameEntry>>, address: string, name: string): void {
    const byName = byAddress.get(address);
    if (!byName?.delete(name)) return;
    if (byName.size === 0) byAddress.delete(address);
    this.#sizes.set(containerId, (this.#sizes.get(containerId) ?? 1) - 1);
  }
}
