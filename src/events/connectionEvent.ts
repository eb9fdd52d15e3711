import type { ConnectFailureReason } from '../sockets/tcpSocket.js';

/** The process that made a connection (outbound) or accepted it (inbound), as far as the source could tell. */
export interface EventProcess {
  /** In the host's pid namespace; absent when not known. */
  pid?: number;
  /** Its name (comm). */
  name?: string;
  /** Its executable (/proc/<pid>/exe), while the process was there to be read. */
  executable?: string;
  /** Why some of the above is missing: the source could not tell, or the process was gone. */
  unknown?: string;
}

/** An unexpected connection, or a connect the policy would not allow that failed (GET /events). */
export interface ConnectionEvent {
  /** Increasing from 1 since outpost started: `?since=<id>` pages on. */
  id: number;
  /** When outpost saw it (ISO 8601): at the collection after it happened. */
  time: string;
  kind: 'unexpected_connection' | 'unexpected_connect_failure';
  container: string;
  image: string;
  composeProject: string;
  composeService: string;
  direction: 'inbound' | 'outbound';
  /**
   * The other end: its container (or `host`) when it is of this host, and its address; off the
   * host, the names the container resolved to that address, when it did (container_peer_name_info).
   */
  peer: { container: string; address: string; names?: string[] };
  /** The link's port: the service port (ephemeral ports are `~ephemeral`). */
  port: number | string;
  process: EventProcess;
  /** Which end's rules refused it: the client's (outbound) or the server's (inbound), and whose. */
  verdict: { side: 'client' | 'server'; container: string };
  /** The rules that cover that end, with where each was written. */
  rules: { id: string; origin: string }[];
  /** The one rule line that would allow it, in the grammar of those rules. */
  allow: string;
  /** A failed connect: why the kernel said it failed. */
  reason?: ConnectFailureReason;
}

/** The event's peer by name: its container (or `host`), else its address. */
export function eventPeer(e: Pick<ConnectionEvent, 'peer'>): string {
  return e.peer.container || e.peer.address;
}

/** The link an event is of: what the log counts repeats by. */
export function eventLinkKey(e: Pick<ConnectionEvent, 'container' | 'direction' | 'peer' | 'port' | 'kind'>): string {
  return `${e.kind}\u0000${e.container}\u0000${e.direction}\u0000${eventPeer(e)}\u0000${e.port}`;
}
