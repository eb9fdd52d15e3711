import type { AttributedSocket } from '../attribution/attribution.js';
import { endpointKey } from '../sockets/socketKeys.js';
import type { SocketFigures } from '../sockets/tcpSocket.js';

/** What one connection end added to its link's counters in one collection, and its RTT now. */
export interface EndFigures {
  end: AttributedSocket;
  sentBytes: number;
  receivedBytes: number;
  retransmits: number;
  sentSegments: number;
  /** Its connect time (outbound, ebpf), once: in the first collection that sees it. */
  connectSeconds: number;
  /** Its smoothed RTT: an end open now, or closed since the last collection; undefined else. */
  rttSeconds: number | undefined;
}

interface Remembered {
  namespaceId: string;
  /** Its 4-tuple key, when it was made (an end first seen without a cookie). */
  tupleKey: string | undefined;
  cookie: number;
  /** A copy of its figures: the socket's own object dies with the collection (the GC's young space). */
  figures: SocketFigures;
  timeWait: boolean;
  /** The collection that last saw it. */
  seenIn: number;
}

const NONE: SocketFigures = { bytesAcked: 0, bytesReceived: 0, retransmits: 0, segmentsSent: 0, rttUs: 0, connectUs: 0 };

/**
 * Turns the figures the kernel keeps per connection since it began (SocketFigures) into increments
 * per collection, so that a link's counters grow by what its connections did: an end's figures are
 * remembered from one collection to the next, and each collection counts what grew since. An end seen
 * first counts all it has; a closed end (ebpf) counts its last figures against what was counted of
 * it, then is forgotten: none is counted twice, however many reads see it. An end the kernel lists
 * no more without a close (netlink: it closed, or went into TIME_WAIT, which has no figures) is
 * forgotten: what it did after the last read is not counted.
 *
 * An end is known by its cookie, unique on the host (no key to build per socket and collection);
 * one without a cookie yet (ebpf: a socket of before the load nothing asked a cookie for) by its
 * namespace and 4-tuple, and found by it once it has one.
 */
export class FigureLedger {
  readonly #byCookie = new Map<number, Remembered>();
  readonly #byTuple = new Map<string, Remembered>();
  #collection = 0;

  get size(): number {
    return this.#byCookie.size + this.#byTuple.size;
  }

  /**
   * `listed`: the sockets of this collection; `closed`: ends that closed since the last one (not
   * into TIME_WAIT), with their last figures; `kept`: ids of namespaces not read this time, whose
   * memory stays.
   */
  observe(listed: readonly AttributedSocket[], closed: readonly AttributedSocket[], kept: ReadonlySet<string> = new Set()): EndFigures[] {
    const now = ++this.#collection;
    const out: EndFigures[] = [];
    const count = (end: AttributedSocket, figures: SocketFigures, open: boolean) => {
      let last = end.cookie !== 0 ? this.#byCookie.get(end.cookie) : undefined;
      let tupleKey: string | undefined;
      if (!last) {
        tupleKey = `${end.namespace.id}${endpointKey(end.namespace.id, end)}`;
        const byTuple = this.#byTuple.get(tupleKey);
        // The same connection once it has a cookie; another one when both have cookies that differ.
        if (byTuple && (byTuple.cookie === 0 || end.cookie === 0 || byTuple.cookie === end.cookie)) last = byTuple;
      }
      const was = last?.figures ?? NONE;
      const timeWait = end.state === 'time_wait';
      // An end listed in TIME_WAIT for the first time closed since the last collection.
      const sampled = !timeWait || !last?.timeWait;
      out.push({
        end,
        sentBytes: Math.max(0, figures.bytesAcked - was.bytesAcked),
        receivedBytes: Math.max(0, figures.bytesReceived - was.bytesReceived),
        retransmits: Math.max(0, figures.retransmits - was.retransmits),
        sentSegments: Math.max(0, figures.segmentsSent - was.segmentsSent),
        connectSeconds: was.connectUs === 0 ? figures.connectUs / 1e6 : 0,
        rttSeconds: sampled && figures.rttUs > 0 ? figures.rttUs / 1e6 : undefined,
      });
      if (last) this.#forget(last);
      if (!open) return;
      const memory: Remembered = last ?? {
        namespaceId: end.namespace.id,
        tupleKey: undefined,
        cookie: 0,
        figures: { ...NONE },
        timeWait,
        seenIn: now,
      };
      Object.assign(memory.figures, figures);
      memory.cookie = end.cookie;
      memory.timeWait = timeWait;
      memory.seenIn = now;
      if (end.cookie !== 0) {
        memory.tupleKey = undefined;
        this.#byCookie.set(end.cookie, memory);
      } else {
        memory.tupleKey = tupleKey;
        this.#byTuple.set(tupleKey ?? '', memory);
      }
    };
    for (const s of listed) if (s.figures) count(s, s.figures, true);
    for (const s of closed) if (s.figures) count(s, s.figures, false);
    // What no read saw this time is gone, but in a namespace that could not be read.
    for (const memories of [this.#byCookie, this.#byTuple]) {
      for (const memory of memories.values()) if (memory.seenIn !== now && !kept.has(memory.namespaceId)) this.#forget(memory);
    }
    return out;
  }

  #forget(memory: Remembered): void {
    if (memory.tupleKey !== undefined) this.#byTuple.delete(memory.tupleKey);
    else this.#byCookie.delete(memory.cookie);
  }
}
