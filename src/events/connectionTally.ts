/** Collections a connection is remembered after its last end was seen: its ends may come in different reads. */
const KEPT_COLLECTIONS = 3;

interface Tallied {
  /** Ends seen of it, by the namespace they are in. */
  ends: Map<string, number>;
  /** Connections told of it: events made. */
  told: number;
  /** The collection that last saw an end of it. */
  seen: number;
}

/**
 * How many connections the ends of one 4-tuple make, over the last few collections. A
 * connection's two ends may come in two reads (an event source drains them as they come), and
 * the kernel may use a 4-tuple again, even within one read: the connections are as many as the
 * ends of the side that has the most, and those not told yet are the new ones.
 */
export class ConnectionTally {
  readonly #connections = new Map<string, Tallied>();
  #collection = 0;

  /**
   * Adds this collection's ends of `connection` (how many per namespace); returns, per
   * namespace, how many of them are ends of connections not told yet, and counts those as told.
   * The greatest of those is the number of new connections.
   */
  add(connection: string, endsByNamespace: ReadonlyMap<string, number>): Map<string, number> {
    const tallied = this.#connections.get(connection) ?? { ends: new Map<string, number>(), told: 0, seen: 0 };
    const fresh = new Map<string, number>();
    let connections = tallied.told;
    for (const [namespace, count] of endsByNamespace) {
      const before = tallied.ends.get(namespace) ?? 0;
      const after = before + count;
      tallied.ends.set(namespace, after);
      // This side's ends numbered before+1…after; those above `told` are of connections not told.
      fresh.set(namespace, Math.max(0, after - Math.max(before, tallied.told)));
      connections = Math.max(connections, after);
    }
    tallied.told = connections;
    tallied.seen = this.#collection;
    this.#connections.set(connection, tallied);
    return fresh;
  }

  /** Ends a collection: forgets the connections no read has had an end of for a while. */
  endCollection(): void {
    this.#collection++;
    for (const [connection, tallied] of this.#connections) {
      if (this.#collection - tallied.seen >= KEPT_COLLECTIONS) this.#connections.delete(connection);
    }
  }

  get size(): number {
    return this.#connections.size;
  }
}
