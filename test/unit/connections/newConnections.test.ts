import { describe, expect, it } from 'vitest';
import { ConnectionLedger } from '../../../src/connections/connectionLedger.js';
import type { Container } from '../../../src/inventory/container.js';
import { attributeSockets, type AttributedSocket } from '../../../src/attribution/attribution.js';
import { LinkContext } from '../../../src/links/containerLinks.js';
import type { EstablishedGroup } from '../../../src/links/linkGroups.js';
import { countNewConnections, type NewConnections } from '../../../src/connections/newConnections.js';
import type { NetNamespace } from '../../../src/namespaces/netNamespaces.js';
import type { NamespaceSockets } from '../../../src/sockets/socketSource.js';
import { capturedCollection, capturedSockets, client, clientNs, server, serverNs } from '../../support/connectionFixtures.js';

function count(
  sockets: AttributedSocket[],
  namespaces: NetNamespace[],
  peerContainers: Container[],
  hostAddresses: string[] = [],
): NewConnections {
  const context = new LinkContext({ sockets, namespaces, peerContainers, hostAddresses });
  return countNewConnections(new ConnectionLedger().observe(sockets), context);
}

const describeGroups = (groups: EstablishedGroup[] | undefined) =>
  (groups ?? []).map((g) => `${g.direction} ${g.remoteAddress} ${g.port} ${g.remoteContainer || '-'} ×${g.count}`).sort();

describe('countNewConnections on captured tables (a long connection and three short ones)', () => {
  const counted = count(capturedCollection('a', 'netlink'), [serverNs, clientNs], [server, client]);

  it('counts each connection for the server, inbound, naming the client', () => {
    expect(describeGroups(counted.byContainer.get(server.id))).toEqual([
      'inbound 10.213.41.3 8080 outpost-capture-client ×1',
      'inbound 10.213.41.3 9000 outpost-capture-client ×2',
      'inbound fd00:213:41::3 9000 outpost-capture-client ×1',
    ]);
  });

  it('counts each for the client too, outbound to the server, though its ends of the short ones are gone', () => {
    expect(describeGroups(counted.byContainer.get(client.id))).toEqual([
      'outbound 10.213.41.2 8080 outpost-capture-server ×1',
      'outbound 10.213.41.2 9000 outpost-capture-server ×2',
      'outbound fd00:213:41::2 9000 outpost-capture-server ×1',
    ]);
    expect(counted.unattributed.size).toBe(0);
  });
});

describe('countNewConnections when the client end is established before the server has accepted it', () => {
  it('counts the server end at once, and not again once it is a connection of its own', () => {
    // The captured long connection, its server end still a request socket (SYN_RECV, no inode).
    const pending = capturedSockets('server', 'a', 'netlink').map((s) =>
      s.state === 'established' ? { ...s, state: 'syn_recv' as const, inode: 0 } : s,
    );
    const read = (serverSockets: typeof pending) =>
      attributeSockets([
        { namespace: serverNs, sockets: serverSockets.filter((s) => s.state !== 'time_wait'), parseErrors: 0 },
        { namespace: clientNs, sockets: capturedSockets('client', 'a', 'netlink'), parseErrors: 0 },
      ]);
    const ledger = new ConnectionLedger();
    const countWith = (sockets: AttributedSocket[]) =>
      countNewConnections(
        ledger.observe(sockets),
        new LinkContext({ sockets, namespaces: [serverNs, clientNs], peerContainers: [server, client], hostAddresses: [] }),
      );
    const first = countWith(read(pending));
    expect(describeGroups(first.byContainer.get(server.id))).toEqual(['inbound 10.213.41.3 8080 outpost-capture-client ×1']);
    expect(describeGroups(first.byContainer.get(client.id))).toEqual(['outbound 10.213.41.2 8080 outpost-capture-server ×1']);
    const second = countWith(read(capturedSockets('server', 'a', 'netlink')));
    expect(second.byContainer.size).toBe(0);
  });
});

describe('countNewConnections through a published port (NAT: each end has its own 4-tuple)', () => {
  it('counts each end once, and does not add the other end on top of the one seen', () => {
    // As with Docker's userland proxy off: the client called a host address on a published port,
    // the server saw the client's own address. (The captured client end, its destination rewritten.)
    const natted = capturedSockets('client', 'a', 'netlink').map((s) =>
      s.state === 'established' ? { ...s, remoteAddress: '192.0.2.10', remotePort: 18080 } : s,
    );
    const sockets = attributeSockets([
      { namespace: serverNs, sockets: capturedSockets('server', 'a', 'netlink').filter((s) => s.state !== 'time_wait'), parseErrors: 0 },
      { namespace: clientNs, sockets: natted, parseErrors: 0 },
    ]);
    const counted = count(sockets, [serverNs, clientNs], [server, client], ['192.0.2.10']);
    expect(describeGroups(counted.byContainer.get(client.id))).toEqual(['outbound 192.0.2.10 18080 host ×1']);
    expect(describeGroups(counted.byContainer.get(server.id))).toEqual(['inbound 10.213.41.3 8080 outpost-capture-client ×1']);
  });
});

describe('countNewConnections in a shared namespace', () => {
  const sidecar: Container = { ...client, id: 'f'.repeat(64), name: 'sidecar', addresses: [], publishedPorts: [] };

  it('a sidecar making short connections: its ends are gone, so they are counted as unattributed, never given to the owner', () => {
    const shared: NetNamespace = { id: 'net:[shared]', host: false, containers: [client, sidecar] };
    const clientSockets = capturedSockets('client', 'a', 'netlink');
    const longLived = clientSockets.find((s) => s.state === 'established')!;
    const read: NamespaceSockets[] = [
      { namespace: serverNs, sockets: capturedSockets('server', 'a', 'netlink'), parseErrors: 0 },
      { namespace: shared, sockets: clientSockets, owners: new Map([[longLived.inode, sidecar.id]]), parseErrors: 0 },
    ];
    const counted = count(attributeSockets(read), [serverNs, shared], [server, client, sidecar]);
    // The open connection is the sidecar's, exactly (its process holds the socket).
    expect(describeGroups(counted.byContainer.get(sidecar.id))).toEqual(['outbound 10.213.41.2 8080 outpost-capture-server ×1']);
    expect(counted.byContainer.get(client.id)).toBeUndefined();
    // The server's ends name the peer by its address, which is the owner's (DESIGN's rule 2).
    expect(describeGroups(counted.byContainer.get(server.id))).toEqual([
      'inbound 10.213.41.3 8080 sidecar ×1',
      'inbound 10.213.41.3 9000 outpost-capture-client ×2',
      'inbound fd00:213:41::3 9000 outpost-capture-client ×1',
    ]);
    expect([...counted.unattributed]).toEqual([['outpost-capture-client', 3]]);
  });

  it('a sidecar serving short connections: the closed ends go to the holder of the listener, on both sides', () => {
    const shared: NetNamespace = { id: 'net:[shared]', host: false, containers: [server, sidecar] };
    const serverSockets = capturedSockets('server', 'a', 'netlink');
    const httpd = serverSockets.find((s) => s.state === 'listen' && s.localPort === 9000)!;
    const echo = serverSockets.find((s) => s.state === 'listen' && s.localPort === 8080)!;
    const accepted = serverSockets.find((s) => s.state === 'established')!;
    const read: NamespaceSockets[] = [
      {
        namespace: shared,
        sockets: serverSockets,
        owners: new Map([
          [httpd.inode, sidecar.id],
          [echo.inode, server.id],
          [accepted.inode, server.id],
        ]),
        parseErrors: 0,
      },
      { namespace: clientNs, sockets: capturedSockets('client', 'a', 'netlink'), parseErrors: 0 },
    ];
    const counted = count(attributeSockets(read), [shared, clientNs], [server, client, sidecar]);
    expect(describeGroups(counted.byContainer.get(sidecar.id))).toEqual([
      'inbound 10.213.41.3 9000 outpost-capture-client ×2',
      'inbound fd00:213:41::3 9000 outpost-capture-client ×1',
    ]);
    expect(describeGroups(counted.byContainer.get(server.id))).toEqual(['inbound 10.213.41.3 8080 outpost-capture-client ×1']);
    expect(describeGroups(counted.byContainer.get(client.id))).toEqual([
      'outbound 10.213.41.2 8080 outpost-capture-server ×1',
      'outbound 10.213.41.2 9000 sidecar ×2',
      'outbound fd00:213:41::2 9000 sidecar ×1',
    ]);
    expect(counted.unattributed.size).toBe(0);
  });
});
