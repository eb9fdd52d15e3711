/** Collections a connection is remembered after its last end was seen: its ends may come in different reads. */
const KEPT_COLLECTIONS = 3;

interface Tallied {
  /** The namespaces its ends were seen in, and how many in each (`ends[i]` in `namespaces[i]`): one or two. */
  namespaces: string[];
  ends: number[];
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
  // Arrays, not maps, for a connection's one or two sides: a storm tallies thousands a collection.
  readonly #connections = new Map<string, Tallied>();
  #collection = 0;

  /**
   * Adds this collection's ends of `connection`: `counts[i]` of them in `namespaces[i]`. Returns,
   * per namespace (in the same order), how many of them are ends of connections not told yet, and
   * counts those as told. The greatest of those is the number of new connections.
   */
  add(connection: string, namespaces: readonly string[], counts: readonly number[]): number[] {
    let tallied = this.#connections.get(connection);
    if (!tallied) {
      tallied = { namespaces: [], ends: [], told: 0, seen: 0 };
      this.#connections.set(connection, tallied);
    }
    let connections = tallied.told;
    const fresh = namespaces.map((namespace, i) => {
      const known = tallied.namespaces.indexOf(namespace);
      const at = known >= 0 ? known : tallied.namespaces.push(namespace) - 1;
      const before = tallied.ends[at] ?? 0;
      const after = before + (counts[i] ?? 0);
      tallied.ends[at] = after;
      connections = Math.max(connections, after);
      // This side's ends numbered before+1…after; those above `told` are of connections not told.
      return Math.max(0, after - Math.max(before, tallied.told));
    });
    tallied.told = connections;
    tallied.seen = this.#collection;
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
