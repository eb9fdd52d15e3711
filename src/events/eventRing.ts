import type { ConnectionEvent } from './connectionEvent.js';

/** Which events a reader asks for (GET /events): after an id, of a container, of one link. */
export interface EventQuery {
  /** Only events with a greater id. */
  since?: number;
  container?: string;
  direction?: string;
  /** The peer's container (or host), or its address. */
  peer?: string;
  port?: string;
  /** The two ends of a link, in either order: the event's container is one, its peer (container, host or address) the other. */
  between?: readonly [string, string];
  /** At most this many, the oldest first. */
  limit?: number;
}

/** The recent events, at most `capacity`: the oldest go first. Memory is bounded whatever the rate. */
export class EventRing {
  readonly capacity: number;
  readonly #events: ConnectionEvent[] = [];
  /** Where the oldest is, once the ring is full. */
  #start = 0;
  #lastId = 0;
  /** Events pushed out by newer ones since outpost started. */
  dropped = 0;

  constructor(capacity: number) {
    this.capacity = Math.max(1, capacity);
  }

  /** Keeps `event` (not a copy: a storm adds thousands a collection), with its id set. */
  add(event: Omit<ConnectionEvent, 'id'> & { id?: number }): ConnectionEvent {
    const stored = event as ConnectionEvent;
    stored.id = ++this.#lastId;
    if (this.#events.length < this.capacity) this.#events.push(stored);
    else {
      this.#events[this.#start] = stored;
      this.#start = (this.#start + 1) % this.capacity;
      this.dropped++;
    }
    return stored;
  }

  get size(): number {
    return this.#events.length;
  }

  /** The events asked for, oldest first. */
  query(q: EventQuery = {}): ConnectionEvent[] {
    const found: ConnectionEvent[] = [];
    const limit = q.limit ?? Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.#events.length && found.length < limit; i++) {
      const e = this.#events[(this.#start + i) % this.#events.length];
      if (!e) break;
      if (q.since !== undefined && e.id <= q.since) continue;
      if (q.container !== undefined && e.container !== q.container) continue;
      if (q.direction !== undefined && e.direction !== q.direction) continue;
      if (q.peer !== undefined && e.peer.container !== q.peer && e.peer.address !== q.peer) continue;
      if (q.port !== undefined && String(e.port) !== q.port) continue;
      if (q.between && !linksBetween(e, q.between)) continue;
      found.push(e);
    }
    return found;
  }
}

function linksBetween(e: ConnectionEvent, [a, b]: readonly [string, string]): boolean {
  const isPeer = (name: string) => e.peer.container === name || e.peer.address === name;
  return (e.container === a && isPeer(b)) || (e.container === b && isPeer(a));
}
