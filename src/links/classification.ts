import { isUnspecified } from '../sockets/ipAddress.js';
import type { AttributedSocket } from './attribution.js';

export type Direction = 'inbound' | 'outbound';

/**
 * Tells inbound from outbound connections by the listeners of their namespace: a connection
 * whose local port is a port its namespace listens on (on its address or a wildcard) was
 * accepted there. The other side's port is then a client's ephemeral one, which never becomes a
 * label value.
 */
export class DirectionClassifier {
  readonly #listening = new Set<string>();

  constructor(sockets: readonly AttributedSocket[]) {
    for (const s of sockets) {
      if (s.state !== 'listen') continue;
      const address = isUnspecified(s.localAddress) ? '*' : s.localAddress;
      this.#listening.add(`${s.namespace.id}|${address}|${s.localPort}`);
    }
  }

  direction(socket: AttributedSocket): Direction {
    const ns = socket.namespace.id;
    const port = socket.localPort;
    return this.#listening.has(`${ns}|*|${port}`) || this.#listening.has(`${ns}|${socket.localAddress}|${port}`)
      ? 'inbound'
      : 'outbound';
  }
}
