import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseProcNetTcp, type ReadWindow } from '../../../src/sockets/procNetTcp.js';
import type { TcpSocket } from '../../../src/sockets/tcpSocket.js';
import { ConnectionLedger } from '../../../src/connections/connectionLedger.js';
import type { AttributedSocket } from '../../../src/attribution/attribution.js';
import { capturedCollection, clientNs, serverNs, type Source } from '../../support/connectionFixtures.js';

const ends = (sockets: readonly AttributedSocket[]) =>
  sockets.map((s) => `${s.container?.name} ${s.state} ${s.localAddress}:${s.localPort} ${s.remoteAddress}:${s.remotePort}`).sort();

describe.each<Source>(['netlink', 'procfs'])('ConnectionLedger on captured %s tables', (source) => {
  it('finds every connection in the first collection: the open one at both ends, the closed short ones at the end that remains', () => {
    const ledger = new ConnectionLedger();
    expect(ends(ledger.observe(capturedCollection('a', source)))).toEqual([
      'outpost-capture-client established 10.213.41.3:50330 10.213.41.2:8080',
      'outpost-capture-server established 10.213.41.2:8080 10.213.41.3:50330',
      'outpost-capture-server time_wait 10.213.41.2:9000 10.213.41.3:39426',
      'outpost-capture-server time_wait 10.213.41.2:9000 10.213.41.3:39438',
      'outpost-capture-server time_wait fd00:213:41::2:9000 fd00:213:41::3:33008',
    ]);
    // Every connection end listed, nothing else (listeners and Docker's DNS are no connection).
    expect(ledger.size).toBe(5);
  });

  it('counts nothing again for the same connections seen again, open or now in time_wait', () => {
    const ledger = new ConnectionLedger();
    ledger.observe(capturedCollection('a', source));
    expect(ledger.observe(capturedCollection('a', source))).toEqual([]);
    // The long connection closed by the client: its end went from established to time_wait.
    expect(ledger.observe(capturedCollection('b', source))).toEqual([]);
    // The server's end of it is gone from the kernel, and from the ledger.
    expect(ledger.size).toBe(4);
  });

  it('forgets what the kernel no longer lists, except in a namespace that could not be read', () => {
    const ledger = new ConnectionLedger();
    ledger.observe(capturedCollection('a', source));
    const clientOnly = capturedCollection('a', source).filter((s) => s.namespace === clientNs);
    ledger.observe(clientOnly, new Set([serverNs.id]));
    expect(ledger.size).toBe(5);
    ledger.observe(clientOnly);
    expect(ledger.size).toBe(1);
    // Forgotten, the server's closed connections are new again if they are seen again.
    expect(ends(ledger.observe(capturedCollection('a', source)))).toHaveLength(3);
  });

  it('remembers who held a socket, for the same socket closed (attribution in shared namespaces)', () => {
    const ledger = new ConnectionLedger();
    ledger.observe(capturedCollection('a', source));
    const [clientEnd] = capturedCollection('b', source).filter((s) => s.namespace === clientNs && s.state === 'time_wait');
    expect(ledger.holderOf(clientNs.id, clientEnd!)).toBe(clientNs.containers[0]!.id);
    expect(ledger.holderOf(serverNs.id, clientEnd!)).toBeUndefined();
  });
});

describe('a reused 4-tuple is a new connection', () => {
  it('procfs: the same 4-tuple established again after time_wait', () => {
    const ledger = new ConnectionLedger();
    ledger.observe(capturedCollection('a', 'procfs'));
    ledger.observe(capturedCollection('b', 'procfs'));
    expect(ends(ledger.observe(capturedCollection('a', 'procfs')))).toEqual([
      'outpost-capture-client established 10.213.41.3:50330 10.213.41.2:8080',
      'outpost-capture-server established 10.213.41.2:8080 10.213.41.3:50330',
    ]);
  });

  it('netlink: the same 4-tuple with another cookie, even in the same state', () => {
    const ledger = new ConnectionLedger();
    ledger.observe(capturedCollection('b', 'netlink'));
    const reused = capturedCollection('b', 'netlink').map((s) => (s.localPort === 50330 ? { ...s, cookie: s.cookie + 1000 } : s));
    expect(ends(ledger.observe(reused))).toEqual(['outpost-capture-client time_wait 10.213.41.3:50330 10.213.41.2:8080']);
    // The same cookie going from established to time_wait is the same connection.
    const again = new ConnectionLedger();
    again.observe(capturedCollection('a', 'netlink'));
    expect(again.observe(capturedCollection('b', 'netlink'))).toEqual([]);
  });
});

describe('procfs: a 4-tuple its server holds in TIME_WAIT, reused by the client (captureReuse.mjs)', () => {
  // The server's tcp6 read three times: the TIME_WAIT of a connection from port 40000 twice, then
  // that of the next connection from port 40000, which took the same 4-tuple.
  const capture = JSON.parse(readFileSync(new URL('./fixtures/reuse.json', import.meta.url), 'utf8')) as {
    client: string;
    windows: ReadWindow[];
  };
  const read = (n: 1 | 2 | 3, withWindow = true): AttributedSocket[] => {
    const sockets: TcpSocket[] = [];
    const file = readFileSync(new URL(`./fixtures/reuse-${n}.tcp6`, import.meta.url));
    parseProcNetTcp(file, 6, sockets, file.length, withWindow ? capture.windows[n - 1] : undefined);
    return sockets.map((s) => ({ ...s, namespace: serverNs, container: serverNs.containers[0], unattributed: false }));
  };
  const reusedEnd = (sockets: readonly AttributedSocket[]) =>
    sockets.filter((s) => s.remotePort === 40000).map((s) => `${s.state} ${s.remoteAddress}`);

  it('reads when each TIME_WAIT ends from its timer, within the span of the read', () => {
    const [first] = read(1).filter((s) => s.remotePort === 40000);
    // 03:00001751 in the file: 5969 ticks of 10 ms left.
    expect(first!.timeWaitEnds).toEqual({ earliest: capture.windows[0]!.from + 59_690, latest: capture.windows[0]!.to + 59_700 });
    // Listeners have no timewait timer; nor has any socket when the read's span is not given.
    const others = read(1).filter((s) => s.state !== 'time_wait');
    expect(others.length).toBeGreaterThan(0);
    expect(others.filter((s) => s.timeWaitEnds !== undefined)).toEqual([]);
    expect(read(1, false).filter((s) => s.timeWaitEnds !== undefined)).toEqual([]);
  });

  it("gives an orphan's FIN_WAIT2 minisock no end (its timer starts again when it enters TIME_WAIT)", () => {
    const line = readFileSync(new URL('./fixtures/reuse-1.tcp6', import.meta.url), 'latin1')
      .split('\n')
      .find((l) => l.includes(':9C40 06 '))!;
    const sockets: TcpSocket[] = [];
    const text = Buffer.from(`header\n${line.replace(':9C40 06 ', ':9C40 05 ')}\n`, 'latin1');
    parseProcNetTcp(text, 6, sockets, text.length, capture.windows[0]);
    expect(sockets.map((s) => [s.state, s.timeWaitEnds])).toEqual([['fin_wait2', undefined]]);
  });

  it('counts the TIME_WAIT seen again as the same connection, and the one whose timer started again as a new one', () => {
    const ledger = new ConnectionLedger();
    expect(reusedEnd(ledger.observe(read(1)))).toEqual([`time_wait ${capture.client}`]);
    expect(reusedEnd(ledger.observe(read(2)))).toEqual([]);
    expect(reusedEnd(ledger.observe(read(3)))).toEqual([`time_wait ${capture.client}`]);
  });

  it('without the timers (a read that gives none), takes it for the same connection', () => {
    const ledger = new ConnectionLedger();
    ledger.observe(read(1, false));
    ledger.observe(read(2, false));
    expect(reusedEnd(ledger.observe(read(3, false)))).toEqual([]);
  });
});

describe('ends a source saw pass between two reads (ebpf)', () => {
  // The client's end of the long connection, as an event would give it: established, same cookie.
  const longEnd = () => capturedCollection('a', 'netlink').find((s) => s.namespace === clientNs && s.state === 'established')!;

  it('counts a passed end that is gone, once, and does not remember it', () => {
    const ledger = new ConnectionLedger();
    const listed = capturedCollection('b', 'netlink').filter(
      (s) => s.localPort !== longEnd().localPort && s.remotePort !== longEnd().localPort,
    );
    ledger.observe(listed);
    const size = ledger.size;
    expect(ends(ledger.observe(listed, new Set(), [longEnd()]))).toEqual([
      'outpost-capture-client established 10.213.41.3:50330 10.213.41.2:8080',
    ]);
    expect(ledger.size).toBe(size);
  });

  it('does not count it again once the kernel lists it established, when it was listed opening', () => {
    const ledger = new ConnectionLedger();
    const opening = capturedCollection('a', 'netlink').map((s) =>
      s.cookie === longEnd().cookie ? { ...s, state: 'syn_sent' as const } : s,
    );
    const first = ledger.observe(opening, new Set(), [longEnd()]);
    expect(ends(first).filter((e) => e.includes('50330'))).toHaveLength(2);
    expect(ends(ledger.observe(capturedCollection('a', 'netlink')))).toEqual([]);
  });

  it('does not count an end that was listed before', () => {
    const ledger = new ConnectionLedger();
    ledger.observe(capturedCollection('a', 'netlink'));
    expect(ledger.observe(capturedCollection('a', 'netlink'), new Set(), [longEnd()])).toEqual([]);
  });
});

describe('a passed end on a 4-tuple the kernel reused', () => {
  it('is not counted again when it was listed last time and a newer connection holds its 4-tuple now', () => {
    const ledger = new ConnectionLedger();
    ledger.observe(capturedCollection('a', 'netlink'));
    const old = capturedCollection('a', 'netlink').find((s) => s.namespace === clientNs && s.state === 'established')!;
    // This time the kernel lists a newer connection on the same 4-tuple (another cookie); the
    // old one's establishment arrives as an event only now.
    const ofIt = (s: AttributedSocket) => s.localPort === old.localPort || s.remotePort === old.localPort;
    const reused = capturedCollection('a', 'netlink').map((s) => (ofIt(s) ? { ...s, cookie: s.cookie + 1000 } : s));
    const fresh = ledger.observe(reused, new Set(), [old]);
    // The newer connection, at both ends; the old one not again.
    expect(fresh.map((s) => s.cookie).sort()).toEqual(
      reused
        .filter(ofIt)
        .map((s) => s.cookie)
        .sort(),
    );
    expect(fresh).toHaveLength(2);
  });
});

describe('a socket listed twice in one read (/proc/net/tcp is not read atomically)', () => {
  it.each<Source>(['netlink', 'procfs'])('counts its connection once (%s)', (source) => {
    const ledger = new ConnectionLedger();
    const sockets = capturedCollection('a', source);
    const timeWait = sockets.find((s) => s.state === 'time_wait')!;
    const twice = [...sockets, { ...timeWait }, { ...timeWait, state: 'fin_wait2' as const }];
    expect(ends(ledger.observe(twice))).toEqual(ends(new ConnectionLedger().observe(sockets)));
    expect(ledger.size).toBe(5);
  });
});

describe('the two ends of a connection listed one read apart', () => {
  // The long connection's client end, first listed a read after its server end.
  const all = () => capturedCollection('a', 'netlink');
  const clientEnd = (s: AttributedSocket) => s.namespace === clientNs && s.localPort === 50330;
  const serverFirst = () => all().filter((s) => !clientEnd(s));

  it('counts the late end on its own with a source with events (each end is its own container’s count)', () => {
    const ledger = new ConnectionLedger();
    ledger.observe(serverFirst(), new Set(), [], true);
    expect(ends(ledger.observe(all(), new Set(), [], true))).toEqual([
      'outpost-capture-client established 10.213.41.3:50330 10.213.41.2:8080',
    ]);
    // Listed again: not again.
    expect(ledger.observe(all(), new Set(), [], true)).toEqual([]);
  });

  it('does not count it without events: the first end seen stood for both', () => {
    const ledger = new ConnectionLedger();
    ledger.observe(serverFirst());
    expect(ledger.observe(all())).toEqual([]);
  });

  it('counts only the end whose 4-tuple holds a new connection, not the old end still listed at the other side', () => {
    const ledger = new ConnectionLedger();
    ledger.observe(all(), new Set(), [], true);
    // The client's 4-tuple now holds a newer connection (another cookie); the server still lists
    // its end of the old one (its TIME_WAIT, say): that one was counted already.
    const renewedAtClient = all().map((s) => (clientEnd(s) ? { ...s, cookie: s.cookie + 1000 } : s));
    expect(ledger.observe(renewedAtClient, new Set(), [], true).map((s) => s.cookie)).toEqual([all().find(clientEnd)!.cookie + 1000]);
  });

  it('counts an end once by its cookie, even when a record of it carries another 4-tuple (a local port of 0)', () => {
    const ledger = new ConnectionLedger();
    const timeWait = all().find((s) => s.state === 'time_wait')!;
    // What a skipped state change leaves: the same socket's record, its local port never filled in.
    const portless = { ...timeWait, localPort: 0 };
    const fresh = ledger.observe([...all(), portless], new Set(), [], true);
    expect(fresh.filter((s) => s.cookie === timeWait.cookie)).toHaveLength(1);
    expect(fresh).toHaveLength(new ConnectionLedger().observe(all(), new Set(), [], true).length);
    // Nor a read later, under either 4-tuple.
    expect(ledger.observe([portless], new Set(), [], true)).toEqual([]);
  });

  it('does not count again an end counted as passed, then listed a read later', () => {
    const ledger = new ConnectionLedger();
    const late = all().find(clientEnd)!;
    // Its establishment came as an event before the kernel listed it (nor as opening).
    expect(ends(ledger.observe(serverFirst(), new Set(), [late], true))).toContain(
      'outpost-capture-client established 10.213.41.3:50330 10.213.41.2:8080',
    );
    expect(ledger.observe(all(), new Set(), [], true)).toEqual([]);
  });
});
