import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { containerFromInspect } from '../../../src/inventory/container.js';
import { attributeSockets } from '../../../src/attribution/attribution.js';
import { DirectionClassifier, EPHEMERAL_PORT, parsePortRange } from '../../../src/links/classification.js';
import { buildContainerLinks, LinkContext } from '../../../src/links/containerLinks.js';
import { FOLDED_ADDRESS } from '../../../src/links/seriesBudget.js';
import type { NetNamespace } from '../../../src/namespaces/netNamespaces.js';
import type { TcpSocket } from '../../../src/sockets/tcpSocket.js';
import { InspectAnswer } from '../../../src/inventory/dockerAnswers.js';

const server = containerFromInspect(
  InspectAnswer.parse(JSON.parse(readFileSync(new URL('../inventory/fixtures/inspect-probe6-srv.json', import.meta.url), 'utf8'))),
)!;
const namespace: NetNamespace = { id: 'net:[1]', host: false, containers: [server] };

const listener: TcpSocket = {
  localAddress: '::',
  localPort: 8080,
  remoteAddress: '::',
  remotePort: 0,
  state: 'listen',
  inode: 1,
  cookie: 0,
};
function client(i: number, port = 8080): TcpSocket {
  return {
    localAddress: '10.213.8.2',
    localPort: port,
    remoteAddress: `10.214.${i >> 8}.${i & 255}`,
    remotePort: 40000 + i,
    state: 'established',
    inode: 100 + i,
    cookie: 0,
  };
}

function linksOf(sockets: TcpSocket[], budget: number) {
  const attributed = attributeSockets([{ namespace, sockets, parseErrors: 0 }]);
  const context = new LinkContext({ sockets: attributed, namespaces: [namespace], peerContainers: [server], hostAddresses: [] });
  return buildContainerLinks(attributed, [server], context, { maxSeriesPerContainer: budget })[0]!;
}

describe('the established series budget', () => {
  it('folds 300 clients from 300 addresses into 50 series and one ~other, counting 250 folded', () => {
    const links = linksOf([listener, ...Array.from({ length: 300 }, (_, i) => client(i))], 50);
    expect(links.established).toHaveLength(51);
    expect(links.foldedGroups).toBe(250);
    const other = links.established.filter((g) => g.remoteAddress === FOLDED_ADDRESS);
    expect(other).toEqual([{ direction: 'inbound', remoteAddress: FOLDED_ADDRESS, port: 8080, remoteContainer: '', count: 250 }]);
    // No connection is lost: the counts still add up to 300.
    expect(links.established.reduce((sum, g) => sum + g.count, 0)).toBe(300);
  });

  it('keeps the largest groups and is stable from one collection to the next', () => {
    const sockets = [listener, ...Array.from({ length: 30 }, (_, i) => client(i))];
    // Three more connections from one client make its group the largest.
    for (let k = 1; k <= 3; k++) sockets.push({ ...client(29), remotePort: 50000 + k, inode: 900 + k });
    const first = linksOf(sockets, 5);
    expect(first.established.find((g) => g.remoteAddress === '10.214.0.29')?.count).toBe(4);
    expect(linksOf([...sockets].reverse(), 5).established).toEqual(first.established);
  });

  it('keeps one ~other series per service port', () => {
    const sockets = [listener, { ...listener, localPort: 9090, inode: 2 }];
    for (let i = 0; i < 20; i++) sockets.push(client(i, 8080), { ...client(i, 9090), inode: 500 + i });
    const links = linksOf(sockets, 10);
    expect(
      links.established
        .filter((g) => g.remoteAddress === FOLDED_ADDRESS)
        .map((g) => `${g.port}:${g.count}`)
        .sort(),
    ).toEqual(['8080:15', '9090:15']);
    expect(links.foldedGroups).toBe(30);
  });

  it('leaves a container within its budget alone', () => {
    const links = linksOf([listener, client(1), client(2)], 50);
    expect(links.foldedGroups).toBe(0);
    expect(links.established.map((g) => g.remoteAddress).sort()).toEqual(['10.214.0.1', '10.214.0.2']);
  });
});

describe('direction without a listener: the ephemeral port range', () => {
  const range = parsePortRange('32768\t60999\n')!;
  const socket = (localPort: number, remotePort: number) =>
    attributeSockets([
      {
        namespace,
        sockets: [
          { localAddress: '10.213.8.2', localPort, remoteAddress: '10.213.8.9', remotePort, state: 'established', inode: 7, cookie: 0 },
        ],
        parseErrors: 0,
      },
    ])[0]!;
  const classify = (localPort: number, remotePort: number) => new DirectionClassifier([], range).classify(socket(localPort, remotePort));

  it('takes the end in the range for the client', () => {
    expect(classify(5432, 45000)).toEqual({ direction: 'inbound', port: 5432 });
    expect(classify(45000, 5432)).toEqual({ direction: 'outbound', port: 5432 });
  });

  it('takes a remote end that is a listener seen for the server, even with a port in the range', () => {
    const serverSide: TcpSocket = {
      localAddress: '127.0.0.1',
      localPort: 39091,
      remoteAddress: '127.0.0.1',
      remotePort: 45000,
      state: 'established',
      inode: 8,
      cookie: 0,
    };
    const clientSide: TcpSocket = {
      localAddress: '127.0.0.1',
      localPort: 45000,
      remoteAddress: '127.0.0.1',
      remotePort: 39091,
      state: 'established',
      inode: 9,
      cookie: 0,
    };
    const listening: TcpSocket = {
      localAddress: '0.0.0.0',
      localPort: 39091,
      remoteAddress: '0.0.0.0',
      remotePort: 0,
      state: 'listen',
      inode: 10,
      cookie: 0,
    };
    const attributed = attributeSockets([{ namespace, sockets: [listening, serverSide, clientSide], parseErrors: 0 }]);
    const classifier = new DirectionClassifier(attributed, range);
    expect(classifier.classify(attributed[1]!)).toEqual({ direction: 'inbound', port: 39091 });
    expect(classifier.classify(attributed[2]!)).toEqual({ direction: 'outbound', port: 39091 });
  });

  it('never makes an ephemeral port a label value', () => {
    expect(classify(40000, 45000)).toEqual({ direction: 'outbound', port: EPHEMERAL_PORT });
  });

  it('reads the kernel format and rejects nonsense', () => {
    expect(range).toEqual({ low: 32768, high: 60999 });
    expect(parsePortRange('')).toBeUndefined();
    expect(parsePortRange('60999 32768')).toBeUndefined();
  });
});
