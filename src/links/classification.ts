import { isLoopback, isUnspecified } from '../net/ipAddress.js';
import type { AttributedSocket } from '../attribution/attribution.js';

export type Direction = 'inbound' | 'outbound';

/** The label value for a port when both ends of a connection look ephemeral. */
export const EPHEMERAL_PORT = '~ephemeral';

/** The kernel's ip_local_port_range: the ports it picks for outgoing connections. */
export interface PortRange {
  low: number;
  high: number;
}

/** Linux's default net.ipv4.ip_local_port_range. */
export const DEFAULT_EPHEMERAL_RANGE: PortRange = { low: 32768, high: 60999 };

export interface Classification {
  direction: Direction;
  /** The service port: local for inbound, remote for outbound; never an ephemeral one. */
  port: number | typeof EPHEMERAL_PORT;
}

/**
 * Tells inbound from outbound connections, by the listeners seen:
 * 1. its local port is a port its namespace listens on (on its address or a wildcard): it was
 *    accepted there, inbound;
 * 2. its remote end is a listener seen (in its own namespace, for loopback): outbound to it;
 * 3. else by the ephemeral port range: the end whose port is in it is the client's.
 * Either way the client's ephemeral port never becomes a label value.
 */
export class DirectionClassifier {
  /** "namespace|address|port", address "*" for a wildcard. */
  readonly #listening = new Set<string>();
  /** "address|port" of listeners in any namespace, loopback ones left out. */
  readonly #listeningAnywhere = new Set<string>();
  readonly #ephemeral: PortRange;

  constructor(sockets: readonly AttributedSocket[], ephemeral: PortRange = DEFAULT_EPHEMERAL_RANGE) {
    this.#ephemeral = ephemeral;
    for (const s of sockets) {
      if (s.state !== 'listen') continue;
      const address = isUnspecified(s.localAddress) ? '*' : s.localAddress;
      this.#listening.add(`${s.namespace.id}|${address}|${s.localPort}`);
      if (!isLoopback(address)) this.#listeningAnywhere.add(`${address}|${s.localPort}`);
    }
  }

  classify(socket: AttributedSocket): Classification {
    const ns = socket.namespace.id;
    const { localPort, remotePort, remoteAddress } = socket;
    if (this.#listens(ns, socket.localAddress, localPort)) return { direction: 'inbound', port: localPort };
    const remoteListens = isLoopback(remoteAddress)
      ? this.#listens(ns, remoteAddress, remotePort)
      : this.#listeningAnywhere.has(`*|${remotePort}`) || this.#listeningAnywhere.has(`${remoteAddress}|${remotePort}`);
    if (remoteListens) return { direction: 'outbound', port: remotePort };
    const localEphemeral = this.#isEphemeral(localPort);
    const remoteEphemeral = this.#isEphemeral(remotePort);
    if (remoteEphemeral && !localEphemeral) return { direction: 'inbound', port: localPort };
    if (localEphemeral && remoteEphemeral) return { direction: 'outbound', port: EPHEMERAL_PORT };
    return { direction: 'outbound', port: remotePort };
  }

  #listens(ns: string, address: string, port: number): boolean {
    return this.#listening.has(`${ns}|*|${port}`) || this.#listening.has(`${ns}|${address}|${port}`);
  }

  #isEphemeral(port: number): boolean {
    return port >= this.#ephemeral.low && port <= this.#ephemeral.high;
  }
}

/** Parses /proc/sys/net/ipv4/ip_local_port_range ("32768\t60999"); undefined when malformed. */
export function parsePortRange(text: string): PortRange | undefined {
  const [low, high] = text.trim().split(/\s+/).map(Number);
  return low !== undefined && high !== undefined && Number.isInteger(low) && Number.isInteger(high) && low <= high && low > 0
    ? { low, high }
    : undefined;
}
