import { isLoopback } from '../net/ipAddress.js';
import type { TcpSocket } from './tcpSocket.js';

type Endpoints = Pick<TcpSocket, 'localAddress' | 'localPort' | 'remoteAddress' | 'remotePort'>;

/**
 * One end of a connection as seen from its namespace, local end first: the reversed 4-tuple of
 * the peer's end. Loopback 4-tuples repeat across namespaces and are scoped by `namespaceId`;
 * other addresses are unique on a host.
 */
export function endpointKey(namespaceId: string, s: Endpoints): string {
  const scope = isLoopback(s.localAddress) ? namespaceId : '';
  return `${scope}|${s.localAddress}|${s.localPort}|${s.remoteAddress}|${s.remotePort}`;
}

/** The key of the peer's end of `s`: what endpointKey gives for the socket at the other end. */
export function peerEndpointKey(namespaceId: string, s: Endpoints): string {
  const scope = isLoopback(s.remoteAddress) ? namespaceId : '';
  return `${scope}|${s.remoteAddress}|${s.remotePort}|${s.localAddress}|${s.localPort}`;
}

/**
 * A connection, the same from both of its ends: its endpoints in one order, the lesser address
 * (then port) first. Compared, not joined first: a storm keys thousands of ends a collection.
 */
export function connectionKey(namespaceId: string, s: Endpoints): string {
  const localFirst = s.localAddress < s.remoteAddress || (s.localAddress === s.remoteAddress && s.localPort < s.remotePort);
  return localFirst ? endpointKey(namespaceId, s) : peerEndpointKey(namespaceId, s);
}
