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
  cookie: number;
  figures: SocketFigures;
  timeWait: boolean;
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
 * One end is known by its namespace and 4-tuple, as in ConnectionLedger; a changed cookie on the same
 * 4-tuple is a new connection.
 */
export class FigureLedger {
  #ends = new Map<string, Remembered>();

  get size(): number {
    return this.#ends.size;
  }

  /**
   * `listed`: the sockets of this collection; `closed`: ends that closed since the last one (not
   * into TIME_WAIT), with their last figures; `kept`: ids of namespaces not read this time, whose
   * memory stays.
   */
  observe(listed: readonly AttributedSocket[], closed: readonly AttributedSocket[], kept: ReadonlySet<string> = new Set()): EndFigures[] {
    const before = this.#ends;
    const now = new Map<string, Remembered>();
    const out: EndFigures[] = [];
    const count = (end: AttributedSocket, figures: SocketFigures, open: boolean) => {
      const key = `${end.namespace.id}${endpointKey(end.namespace.id, end)}`;
      const last = now.get(key) ?? before.get(key);
      const same = last !== undefined && (last.cookie === 0 || end.cookie === 0 || last.cookie === end.cookie);
      const was = same ? last.figures : NONE;
      const timeWait = end.state === 'time_wait';
      // An end listed in TIME_WAIT for the first time closed since the last collection.
      const sampled = !timeWait || !same || !last.timeWait;
      out.push({
        end,
        sentBytes: Math.max(0, figures.bytesAcked - was.bytesAcked),
        receivedBytes: Math.max(0, figures.bytesReceived - was.bytesReceived),
        retransmits: Math.max(0, figures.retransmits - was.retransmits),
        sentSegments: Math.max(0, figures.segmentsSent - was.segmentsSent),
        connectSeconds: was.connectUs === 0 ? figures.connectUs / 1e6 : 0,
        rttSeconds: sampled && figures.rttUs > 0 ? figures.rttUs / 1e6 : undefined,
      });
      if (open) now.set(key, { namespaceId: end.namespace.id, cookie: end.cookie, figures, timeWait });
      else now.delete(key);
    };
    for (const s of listed) if (s.figures) count(s, s.figures, true);
    for (const s of closed) if (s.figures) count(s, s.figures, false);
    for (const [key, end] of before) if (kept.has(end.namespaceId) && !now.has(key)) now.set(key, end);
    this.#ends = now;
    return out;
  }
}
