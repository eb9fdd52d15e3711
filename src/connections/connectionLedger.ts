import type { AttributedSocket } from '../attribution/attribution.js';
import { CONNECTION_STATES, type TcpSocket } from '../sockets/tcpSocket.js';
import { connectionKey, endpointKey } from '../sockets/socketKeys.js';

/** What the ledger remembers of one end of a connection between two collections. */
interface EndMemory {
  namespaceId: string;
  connection: string;
  /** The kernel's cookie of the socket (netlink), 0 when the source has none. */
  cookie: number;
  /** Seen past established: seeing the same 4-tuple established again is a new connection. */
  closing: boolean;
  /** The container it was given to: it holds the socket no more once it is closed. */
  holderId: string | undefined;
  /** procfs, exec: when its TIME_WAIT ends (TcpSocket.timeWaitEnds). */
  timeWaitEnds: TcpSocket['timeWaitEnds'];
}

/**
 * A TIME_WAIT that ends later than the one remembered began later: the 4-tuple holds a new
 * connection. (The kernel also starts it again when the peer sends its FIN again, our last ACK
 * lost: that connection then counts twice, where a lost ACK is rare.)
 */
function laterTimeWait(now: TcpSocket['timeWaitEnds'], last: TcpSocket['timeWaitEnds']): boolean {
  return now !== undefined && last !== undefined && now.earliest > last.latest;
}

/**
 * Remembers the connections seen in the last collection, so that each connection is counted
 * once however many collections see it, and however short it was: a closed connection stays
 * in TIME_WAIT for 60 s on the side that closed first.
 *
 * One end of a connection is a socket in a namespace, known by its 4-tuple there; both ends
 * are one connection. A 4-tuple seen again is the same connection, unless its cookie changed
 * (netlink, ebpf), or, where there is no cookie (procfs, exec), it went from a closing state back
 * to established or its TIME_WAIT timer started again: a client reuses a 4-tuple its server holds
 * in TIME_WAIT (the server takes the new SYN), and on loopback its own.
 *
 * What it remembers is what the kernel still lists: an end it no longer lists is forgotten,
 * except in a namespace that could not be read this time (`kept` in observe).
 */
export class ConnectionLedger {
  #ends = new Map<string, EndMemory>();
  /** `key|cookie` of the passed ends counted by the last observe that the kernel did not list. */
  #passedLastTime = new Set<string>();
  /**
   * Sources with events: `namespace|cookie` of the ends counted in the last collections → the
   * collection that counted it. A cookie is one socket's, never handed out again: an end whose
   * cookie was counted is not new, whatever its 4-tuple says (a state change the kernel skipped
   * can leave an end's record with its local port 0 beside the right one).
   */
  readonly #countedCookies = new Map<string, number>();
  #collection = 0;

  /** Ends remembered now. */
  get size(): number {
    return this.#ends.size;
  }

  /** The container that held this socket of `namespaceId` when it was last seen; for attribution. */
  readonly holderOf = (namespaceId: string, socket: TcpSocket): string | undefined =>
    this.#ends.get(memoryKey(namespaceId, socket))?.holderId;

  /**
   * Takes the sockets of one collection and returns the ends of the connections first seen in
   * it (one end, or both when both are on this host and still listed). `kept`: ids of namespaces
   * that were not read this time but still exist, whose memory stays. `passed`: ends a source saw
   * established since the last read and no longer lists as established (ebpf); new unless seen
   * listed before, remembered only while the kernel still lists them (opening).
   *
   * `endsOnTheirOwn` (a source with events, whose every end is counted by its own container):
   * an end first listed now is new even when the other end of its connection was listed before —
   * the two ends of a connection shorter than a collection may be listed one read apart (the
   * client's TIME_WAIT after the server's end). Without it a connection is new once, whichever
   * end shows it first, as the peer's count is inferred from the end seen.
   */
  observe(
    sockets: readonly AttributedSocket[],
    kept: ReadonlySet<string> = new Set(),
    passed: readonly AttributedSocket[] = [],
    endsOnTheirOwn = false,
  ): AttributedSocket[] {
    const before = this.#ends;
    const now = new Map<string, EndMemory>();
    const seen = new Map<string, AttributedSocket[]>();
    const renewed = new Set<string>();
    /** Ends (by memory key) whose 4-tuple now holds another connection than before. */
    const renewedEnds = new Set<string>();
    for (const s of sockets) {
      if (!CONNECTION_STATES.has(s.state)) continue;
      const key = memoryKey(s.namespace.id, s);
      // One end a 4-tuple in a collection: a read of /proc/net/tcp is not atomic, and a socket
      // that moves in the kernel's table while it is read (established → time_wait) can be
      // listed twice. The first one listed stands.
      if (now.has(key)) continue;
      const connection = connectionKey(s.namespace.id, s);
      const closing = s.state !== 'established';
      const last = before.get(key);
      if (
        last &&
        ((s.cookie !== 0 && last.cookie !== 0 && s.cookie !== last.cookie) ||
          (last.closing && !closing) ||
          laterTimeWait(s.timeWaitEnds, last.timeWaitEnds))
      ) {
        renewed.add(connection);
        renewedEnds.add(key);
      }
      now.set(key, {
        namespaceId: s.namespace.id,
        connection,
        cookie: s.cookie,
        closing,
        holderId: s.container?.id,
        timeWaitEnds: s.timeWaitEnds,
      });
      const ends = seen.get(connection);
      if (ends) ends.push(s);
      else seen.set(connection, [s]);
    }

    const known = new Set<string>();
    for (const [key, end] of before) {
      known.add(end.connection);
      if (kept.has(end.namespaceId) && !now.has(key)) now.set(key, end);
    }
    this.#ends = now;

    const fresh: AttributedSocket[] = [];
    const passedLastTime = this.#passedLastTime;
    this.#passedLastTime = new Set();
    for (const [connection, ends] of seen) {
      if (endsOnTheirOwn) {
        // Each end on its own: new when its own 4-tuple was not listed before, or holds another
        // connection now (the other end's renewal says nothing of this one), and not counted
        // last time as a passed end the kernel had not listed yet.
        for (const s of ends) {
          const key = memoryKey(s.namespace.id, s);
          if ((!before.has(key) || renewedEnds.has(key)) && !passedLastTime.has(`${key}|${s.cookie}`)) fresh.push(s);
        }
      } else if (!known.has(connection) || renewed.has(connection)) fresh.push(...ends);
    }
    // Passed ends the kernel still lists, as opening (the read came before the handshake's end).
    const opening = new Set<string>();
    if (passed.length > 0) {
      for (const s of sockets) if (!CONNECTION_STATES.has(s.state)) opening.add(`${memoryKey(s.namespace.id, s)}|${s.cookie}`);
    }
    for (const end of passed) {
      const key = memoryKey(end.namespace.id, end);
      // Counted while it was listed, last time or this time. Both are asked: on a 4-tuple the
      // kernel reused, one of them is the newer connection's.
      const listed = (m: EndMemory | undefined) => m !== undefined && (m.cookie === end.cookie || m.cookie === 0);
      if (listed(now.get(key)) || listed(before.get(key))) continue;
      fresh.push(end);
      if (!now.has(key)) this.#passedLastTime.add(`${key}|${end.cookie}`);
      // Listed established next time, it is not new: remembered. One that is gone is not (what
      // the ledger remembers is what the kernel lists).
      if (!now.has(key) && opening.has(`${key}|${end.cookie}`)) {
        now.set(key, {
          namespaceId: end.namespace.id,
          connection: connectionKey(end.namespace.id, end),
          cookie: end.cookie,
          closing: false,
          holderId: end.container?.id,
          timeWaitEnds: undefined,
        });
      }
    }
    return endsOnTheirOwn ? this.#notCountedBefore(fresh) : fresh;
  }

  /** The ends whose cookie no collection of the last few counted; remembers theirs. */
  #notCountedBefore(fresh: AttributedSocket[]): AttributedSocket[] {
    const collection = ++this.#collection;
    const uncounted = fresh.filter((s) => {
      if (s.cookie === 0) return true;
      const id = `${s.namespace.id}|${s.cookie}`;
      if (this.#countedCookies.has(id)) return false;
      this.#countedCookies.set(id, collection);
      return true;
    });
    for (const [id, counted] of this.#countedCookies) if (collection - counted >= COOKIES_KEPT_COLLECTIONS) this.#countedCookies.delete(id);
    return uncounted;
  }
}

/** Collections a counted end's cookie is remembered: its records may come that many reads apart. */
const COOKIES_KEPT_COLLECTIONS = 3;

function memoryKey(namespaceId: string, s: TcpSocket): string {
  return `${namespaceId}${endpointKey(namespaceId, s)}`;
}
