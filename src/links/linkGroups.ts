import type { EPHEMERAL_PORT, Direction } from './classification.js';

/** The groups a container's sockets are counted in: the labels of its listening and established series. */
export interface ListeningGroup {
  address: string;
  port: number;
  count: number;
}

export interface EstablishedGroup {
  direction: Direction;
  /** The client (inbound) or the server (outbound). */
  remoteAddress: string;
  /** The service port: local for inbound, remote for outbound. */
  port: number | typeof EPHEMERAL_PORT;
  remoteContainer: string;
  count: number;
}

/** The key of an established group: its labels. */
export function groupKey(g: Omit<EstablishedGroup, 'count'>): string {
  return `${g.direction}|${g.remoteAddress}|${g.port}|${g.remoteContainer}`;
}
