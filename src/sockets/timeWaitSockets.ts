import type { BpfSocket } from './bpfRecords.js';

/** How long the kernel keeps a timewait socket (TCP_TIMEWAIT_LEN, fixed). */
export const TIME_WAIT_NS = 60e9;

const tupleOf = (s: BpfSocket) =>
  `${s.netns}|${s.socket.localAddress}|${s.socket.localPort}|${s.socket.remoteAddress}|${s.socket.remotePort}`;

/**
 * The timewait sockets (TIME_WAIT, or FIN_WAIT2 of an orphan) of the eBPF source, which the kernel
 * gives no storage: kept from the event that began each until the kernel's 60 s are over, or until
 * a known socket uses its 4-tuple again (the kernel reuses a 4-tuple in TIME_WAIT for a new
 * connection, and ends the timewait socket without a word). Of two on one 4-tuple, the newer.
 */
export class TimeWaitSockets {
  readonly #byTuple = new Map<string, BpfSocket>();

  /** Adds those `begun`, ends those over at `nowNs` (CLOCK_MONOTONIC) or reused by a `known` socket; returns those current. */
  update(begun: readonly BpfSocket[], known: readonly BpfSocket[], nowNs: number): BpfSocket[] {
    for (const s of begun) {
      const tuple = tupleOf(s);
      const other = this.#byTuple.get(tuple);
      if (!other || other.sinceNs < s.sinceNs) this.#byTuple.set(tuple, s);
    }
    const inUse = new Set(known.map(tupleOf));
    for (const [tuple, s] of this.#byTuple) {
      if (s.sinceNs <= nowNs - TIME_WAIT_NS || inUse.has(tuple)) this.#byTuple.delete(tuple);
    }
    return [...this.#byTuple.values()];
  }
}
