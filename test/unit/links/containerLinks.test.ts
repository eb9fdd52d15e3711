import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { containerFromInspect, type Container } from '../../../src/inventory/container.js';
import { attributeSockets, type AttributedSocket, type RememberedHolder } from '../../../src/attribution/attribution.js';
import { buildContainerLinks, LinkContext, type ContainerLinks } from '../../../src/links/containerLinks.js';
import type { NetNamespace } from '../../../src/namespaces/netNamespaces.js';
import { parseFibTrieLocalAddresses } from '../../../src/net/hostAddresses.js';
import { parseProcNetTcp } from '../../../src/sockets/procNetTcp.js';
import type { NamespaceSockets } from '../../../src/sockets/socketSource.js';
import type { TcpSocket } from '../../../src/sockets/tcpSocket.js';
import { InspectAnswer } from '../../../src/inventory/dockerAnswers.js';

const read = (path: string) => readFileSync(new URL(path, import.meta.url));
const container = (name: string) =>
  containerFromInspect(InspectAnswer.parse(JSON.parse(read(`../inventory/fixtures/inspect-${name}.json`).toString())))!;
const tables = (prefix: string): TcpSocket[] => {
  const out: TcpSocket[] = [];
  parseProcNetTcp(read(`../sockets/fixtures/${prefix}.tcp`), 4, out);
  parseProcNetTcp(read(`../sockets/fixtures/${prefix}.tcp6`), 6, out);
  return out;
};
const hostAddresses = parseFibTrieLocalAddresses(read('../sockets/fixtures/host.fib_trie').toString());

function namespace(id: string, containers: Container[], host = false): NetNamespace {
  return { id, host, containers };
}

const describeLinks = (l: ContainerLinks) => ({
  listening: l.listening.map((g) => `${g.address} ${g.port} ×${g.count}`),
  established: l.established.map((g) => `${g.direction} ${g.remoteAddress} ${g.port} ${g.remoteContainer || '-'} ×${g.count}`),
});

describe('links from real captured tables (a server and its client on a dual-stack network)', () => {
  const server = container('probe6-srv');
  const client = container('probe6-cli');
  const input: NamespaceSockets[] = [
    { namespace: namespace('net:[1]', [server]), sockets: tables('bridge-server'), parseErrors: 0 },
    { namespace: namespace('net:[2]', [client]), sockets: tables('bridge-client'), parseErrors: 0 },
  ];
  const attributed = attributeSockets(input);
  const context = new LinkContext({
    sockets: attributed,
    namespaces: input.map((i) => i.namespace),
    peerContainers: [server, client],
    hostAddresses,
  });
  const links = buildContainerLinks(attributed, [server, client], context, { maxSeriesPerContainer: 100 });
  const byName = new Map(links.map((l) => [l.container.name, l]));

  it("leaves out Docker's DNS listener and classifies the server side", () => {
    expect(describeLinks(byName.get('probe6-srv')!)).toEqual({
      listening: ['127.0.0.1 6060 ×1', ':: 8080 ×1', '::1 7070 ×1', 'fd00:213:7::2 7071 ×1'],
      established: [
        'inbound 10.213.8.3 8080 probe6-cli ×1',
        // A loopback client inside the namespace: both ends are the server's own.
        'inbound 127.0.0.1 8080 probe6-srv ×1',
        'inbound fd00:213:7::3 8080 probe6-cli ×1',
        'outbound 127.0.0.1 8080 probe6-srv ×1',
      ],
    });
  });

  it('classifies the client side as outbound to the service port, never an ephemeral one', () => {
    expect(describeLinks(byName.get('probe6-cli')!)).toEqual({
      listening: [],
      established: ['outbound 10.213.8.2 8080 probe6-srv ×1', 'outbound fd00:213:7::2 8080 probe6-srv ×1'],
    });
  });

  it('counts every socket per state, TIME_WAIT included', () => {
    const states = byName.get('probe6-srv')!.states;
    expect(states.listen).toBe(4);
    expect(states.established).toBe(4);
    expect(states.time_wait).toBe(2);
    expect(byName.get('probe6-cli')!.states.listen).toBe(0);
  });
});

describe('attribution in shared namespaces', () => {
  const owner = container('probe-pub');
  const sidecar = container('probe-sidecar');
  const hostnet = container('probe-hostnet');
  const sockets = tables('bridge-server');
  const listener = sockets.find((s) => s.state === 'listen' && s.localPort === 8080)!;
  const connection = sockets.find((s) => s.state === 'established' && s.remoteAddress === '10.213.8.3')!;
  const timeWait = sockets.find((s) => s.state === 'time_wait')!;

  const shared = (remembered?: RememberedHolder, sockets = [listener, connection, timeWait]) =>
    attributeSockets(
      [
        {
          namespace: namespace('net:[3]', [owner, sidecar]),
          sockets,
          owners: new Map([
            [listener.inode, owner.id],
            [connection.inode, sidecar.id],
          ]),
          parseErrors: 0,
        },
      ],
      remembered,
    );
  const described = (sockets: AttributedSocket[]) =>
    sockets.map((s) => `${s.state} ${s.container?.name ?? (s.unattributed ? '?' : 'host')}`);

  it('gives each socket to the container holding its inode; a closed one no process holds to no one, not to a guess', () => {
    // The TIME_WAIT socket is the client end of a loopback connection: either container may have made it.
    expect(described(shared())).toEqual(['listen probe-pub', 'established probe-sidecar', 'time_wait ?']);
  });

  it('gives a closed socket to the container that held it while it was open', () => {
    const remembered: RememberedHolder = (ns, s) => (ns === 'net:[3]' && s.localPort === timeWait.localPort ? sidecar.id : undefined);
    expect(described(shared(remembered))).toEqual(['listen probe-pub', 'established probe-sidecar', 'time_wait probe-sidecar']);
  });

  it('gives a closed inbound socket to the holder of the listener that accepted it', () => {
    const accepted = { ...timeWait, localAddress: '10.213.8.2', localPort: 8080, remoteAddress: '10.213.8.3', remotePort: 40000 };
    expect(described(shared(undefined, [listener, accepted]))).toEqual(['listen probe-pub', 'time_wait probe-pub']);
  });

  it('gives an accepted connection that came and went between two reads (ebpf) to the holder of the listener in the read', () => {
    const passed = { ...connection, inode: 0, localPort: 8080, remotePort: 40001 };
    const read = shared()[0]!.namespace;
    const listing = [{ namespace: read, sockets: [listener], owners: new Map([[listener.inode, owner.id]]), parseErrors: 0 }];
    const apart = [{ namespace: read, sockets: [passed], owners: new Map<number, string>(), parseErrors: 0 }];
    expect(described(attributeSockets(apart, undefined, listing))).toEqual(['established probe-pub']);
    // Without the read's listeners, nothing tells who accepted it.
    expect(described(attributeSockets(apart))).toEqual(['established ?']);
  });

  it("gives the host's namespace sockets no container unless a container process holds them", () => {
    const attributed = attributeSockets([
      {
        namespace: namespace('net:[4]', [hostnet], true),
        sockets: [listener, connection, timeWait],
        owners: new Map([[connection.inode, hostnet.id]]),
        parseErrors: 0,
      },
    ]);
    expect(attributed.map((s) => `${s.state} ${s.container?.name ?? 'host'}`)).toEqual([
      'listen host',
      'established probe-hostnet',
      'time_wait host',
    ]);
    // An outbound TIME_WAIT socket nobody remembers may be a host process's or the container's.
    expect(attributed.map((s) => s.unattributed)).toEqual([false, false, true]);
  });
});

describe('peer resolution beyond the exact socket', () => {
  const publisher = container('probe-pub'); // publishes 127.0.0.1:18081 and *:18082
  const hostnet = container('probe-hostnet');
  const hostNs = namespace('net:[host]', [hostnet], true);
  const socket = (local: string, lport: number, remote: string, rport: number, inode: number): TcpSocket => ({
    localAddress: local,
    localPort: lport,
    remoteAddress: remote,
    remotePort: rport,
    state: 'established',
    inode,
    cookie: 0,
  });

  function linksOf(sockets: TcpSocket[], owners: Map<number, string>) {
    const attributed = attributeSockets([{ namespace: hostNs, sockets, owners, parseErrors: 0 }]);
    const context = new LinkContext({ sockets: attributed, namespaces: [hostNs], peerContainers: [hostnet, publisher], hostAddresses });
    const [links] = buildContainerLinks(attributed, [hostnet], context, { maxSeriesPerContainer: 100 });
    return describeLinks(links!).established;
  }

  it("names the publisher for a connection to a host address on its published port, through Docker's proxy", () => {
    const mine = socket('127.0.0.1', 40000, '127.0.0.1', 18081, 11);
    const proxy = socket('127.0.0.1', 18081, '127.0.0.1', 40000, 12);
    expect(linksOf([mine, proxy], new Map([[11, hostnet.id]]))).toEqual(['outbound 127.0.0.1 18081 probe-pub ×1']);
  });

  it('names the publisher of a wildcard-bound port on any host address, the host for an unpublished one', () => {
    const viaBridge = socket('172.17.0.1', 40001, '172.17.0.1', 18082, 21);
    const unpublished = socket('172.17.0.1', 40002, '172.17.0.1', 5432, 22);
    expect(
      linksOf(
        [viaBridge, unpublished],
        new Map([
          [21, hostnet.id],
          [22, hostnet.id],
        ]),
      ),
    ).toEqual(['outbound 172.17.0.1 5432 host ×1', 'outbound 172.17.0.1 18082 probe-pub ×1']);
  });

  it('names the owner of a container address, and nobody for an address off the host', () => {
    const toContainer = socket('192.0.2.2', 40003, '10.213.9.2', 8080, 31);
    const offHost = socket('192.0.2.2', 40004, '198.51.100.7', 443, 32);
    expect(
      linksOf(
        [toContainer, offHost],
        new Map([
          [31, hostnet.id],
          [32, hostnet.id],
        ]),
      ),
    ).toEqual(['outbound 10.213.9.2 8080 probe-pub ×1', 'outbound 198.51.100.7 443 - ×1']);
  });
});
