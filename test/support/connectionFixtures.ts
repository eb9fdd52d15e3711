import { readFileSync } from 'node:fs';
import { containerFromInspect, type Container } from '../../src/inventory/container.js';
import { attributeSockets, type AttributedSocket, type RememberedHolder } from '../../src/attribution/attribution.js';
import type { NetNamespace } from '../../src/namespaces/netNamespaces.js';
import { parseProcNetTcp } from '../../src/sockets/procNetTcp.js';
import { decodeSockDiagRecords } from '../../src/sockets/sockDiagRecords.js';
import type { TcpSocket } from '../../src/sockets/tcpSocket.js';
import { InspectAnswer } from '../../src/inventory/dockerAnswers.js';

/**
 * The captures of test/unit/connections/fixtures (capture.mjs): a server and a client, phase a
 * (a long connection open, three short ones in TIME_WAIT on the server) and phase b (the long
 * one closed by the client, in TIME_WAIT on the client).
 */
const fixture = (name: string) => readFileSync(new URL(`../unit/connections/fixtures/${name}`, import.meta.url));

const [serverInfo, clientInfo] = InspectAnswer.array().parse(JSON.parse(fixture('containers.json').toString()));
export const server: Container = containerFromInspect(serverInfo!)!;
export const client: Container = containerFromInspect(clientInfo!)!;
export const serverNs: NetNamespace = { id: 'net:[server]', host: false, containers: [server] };
export const clientNs: NetNamespace = { id: 'net:[client]', host: false, containers: [client] };

export type Role = 'server' | 'client';
export type Phase = 'a' | 'b';
export type Source = 'netlink' | 'procfs';

/** The sockets of one container in one phase, as one source read them. */
export function capturedSockets(role: Role, phase: Phase, source: Source): TcpSocket[] {
  const out: TcpSocket[] = [];
  if (source === 'netlink') decodeSockDiagRecords(fixture(`${role}-${phase}.records`), out);
  else {
    parseProcNetTcp(fixture(`${role}-${phase}.tcp`), 4, out);
    parseProcNetTcp(fixture(`${role}-${phase}.tcp6`), 6, out);
  }
  return out;
}

/** One collection of both namespaces in `phase`, attributed. */
export function capturedCollection(phase: Phase, source: Source, remembered?: RememberedHolder): AttributedSocket[] {
  return attributeSockets(
    [
      { namespace: serverNs, sockets: capturedSockets('server', phase, source), parseErrors: 0 },
      { namespace: clientNs, sockets: capturedSockets('client', phase, source), parseErrors: 0 },
    ],
    remembered,
  );
}
