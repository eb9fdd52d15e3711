import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dnsMessagesOfPacket, parseDnsResponse, readName, type ResolvedAddress } from '../../../src/names/dnsMessage.js';

/** Packets captured by native/dns_answers.c from dnsmasq (fixtures/captureAnswers.mjs says what each asked). */
const captured = (
  JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'answers.json'), 'utf8')) as { what: string; hex: string }[]
).map((p) => ({ what: p.what, packet: Buffer.from(p.hex, 'hex') }));
const packetOf = (start: string) => {
  const found = captured.filter((p) => p.what.startsWith(start));
  if (found.length === 0) throw new Error(`no captured packet "${start}"`);
  return found;
};
const answersOf = (start: string): ResolvedAddress[] =>
  packetOf(start).flatMap((p) => dnsMessagesOfPacket(p.packet).flatMap((m) => parseDnsResponse(m)));
const byAddress = (r: ResolvedAddress[]) => [...r].sort((a, b) => (a.address < b.address ? -1 : 1));

// ---- messages written by hand, for what no real server sends -------------------------------
const u16 = (n: number) => [n >> 8, n & 0xff];
const u32 = (n: number) => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const name = (...labels: (string | number[])[]) => [
  ...labels.flatMap((l) => {
    const bytes = typeof l === 'string' ? [...Buffer.from(l, 'latin1')] : l;
    return [bytes.length, ...bytes];
  }),
  0,
];
const pointer = (offset: number) => [0xc0 | (offset >> 8), offset & 0xff];
const QUESTION_AT = 12;
/** A NOERROR response: one question, then the answer records given as bytes. */
function response(question: number[], answers: number[][], flags = 0x8180): Uint8Array {
  return Uint8Array.from([
    ...u16(0x1234),
    ...u16(flags),
    ...u16(1),
    ...u16(answers.length),
    0,
    0,
    0,
    0,
    ...question,
    ...u16(1),
    ...u16(1),
    ...answers.flat(),
  ]);
}
const record = (owner: number[], type: number, ttl: number, data: number[], klass = 1) => [
  ...owner,
  ...u16(type),
  ...u16(klass),
  ...u32(ttl),
  ...u16(data.length),
  ...data,
];
const A = (owner: number[], ttl: number, ...address: number[]) => record(owner, 1, ttl, address);

describe('parseDnsResponse, on answers dnsmasq sent', () => {
  it('gives both addresses of a name, with the TTL the server gave', () => {
    expect(byAddress(answersOf('A of allowed.test'))).toEqual([
      { address: '203.0.113.10', names: ['allowed.test'], ttlSeconds: 300 },
      { address: '203.0.113.11', names: ['allowed.test'], ttlSeconds: 300 },
    ]);
  });

  it('follows a CNAME: the name asked first, the name it points to after', () => {
    expect(byAddress(answersOf('A of alias.test'))).toEqual([
      { address: '203.0.113.10', names: ['alias.test', 'allowed.test'], ttlSeconds: 300 },
      { address: '203.0.113.11', names: ['alias.test', 'allowed.test'], ttlSeconds: 300 },
    ]);
  });

  it('writes an AAAA record as the sockets write IPv6', () => {
    expect(answersOf('AAAA of v6.test')).toEqual([{ address: '2001:db8::10', names: ['v6.test'], ttlSeconds: 300 }]);
  });

  it('gives nothing for NXDOMAIN', () => {
    expect(packetOf('A of nowhere.test').flatMap((p) => dnsMessagesOfPacket(p.packet))).toHaveLength(1);
    expect(answersOf('A of nowhere.test')).toEqual([]);
  });

  it('keeps the whole records of a truncated answer (TC), each one an address the server gave', () => {
    const got = answersOf('A of big.test');
    expect(got).toHaveLength(30);
    for (const r of got) {
      expect(r.names).toEqual(['big.test']);
      expect(Number(r.address.split('.')[3])).toBeGreaterThanOrEqual(1);
      expect(Number(r.address.split('.')[3])).toBeLessThanOrEqual(40);
      expect(r.address.startsWith('198.51.100.')).toBe(true);
    }
    expect(new Set(got.map((r) => r.address)).size).toBe(30);
  });

  it('reads an answer over TCP from its length prefix, and nothing from the handshake or the close', () => {
    const segments = packetOf('segments from port 53 of a TCP query');
    expect(segments.length).toBeGreaterThanOrEqual(3);
    expect(segments.map((s) => dnsMessagesOfPacket(s.packet).length).sort()).toEqual([...Array<number>(segments.length - 1).fill(0), 1]);
    expect(byAddress(segments.flatMap((s) => dnsMessagesOfPacket(s.packet).flatMap((m) => parseDnsResponse(m))))).toEqual([
      { address: '203.0.113.10', names: ['allowed.test'], ttlSeconds: 300 },
      { address: '203.0.113.11', names: ['allowed.test'], ttlSeconds: 300 },
    ]);
  });
});

describe('readName', () => {
  it('follows a pointer back to a name before it', () => {
    const m = Uint8Array.from([
      ...Array<number>(QUESTION_AT).fill(0),
      ...name('www', 'example', 'test'),
      3,
      ...Buffer.from('api'),
      ...pointer(QUESTION_AT + 4),
    ]);
    const second = QUESTION_AT + name('www', 'example', 'test').length;
    expect(readName(m, QUESTION_AT)).toEqual({ name: 'www.example.test', next: second });
    expect(readName(m, second)).toEqual({ name: 'api.example.test', next: second + 6 });
  });

  it('refuses a pointer to itself, forward, or around a loop', () => {
    const self = Uint8Array.from([...Array<number>(QUESTION_AT).fill(0), ...pointer(QUESTION_AT)]);
    expect(readName(self, QUESTION_AT)).toBeUndefined();
    const forward = Uint8Array.from([...Array<number>(QUESTION_AT).fill(0), ...pointer(QUESTION_AT + 2), ...name('a')]);
    expect(readName(forward, QUESTION_AT)).toBeUndefined();
    // 14: "a" then a pointer to 12, which is a pointer to 14.
    const loop = Uint8Array.from([...Array<number>(QUESTION_AT).fill(0), ...pointer(14), 1, 0x61, ...pointer(QUESTION_AT)]);
    expect(readName(loop, 14)).toBeUndefined();
    expect(readName(loop, QUESTION_AT)).toBeUndefined();
  });

  it('takes a name of 255 bytes on the wire and refuses one of 256', () => {
    const label = (n: number) => 'x'.repeat(n);
    // 4 labels of 63 (256 bytes with their lengths) are one too many; 3 of 63 and one of 61: 255.
    const longest = name(label(63), label(63), label(63), label(61));
    expect(longest.length).toBe(255);
    expect(readName(Uint8Array.from(longest), 0)?.name).toBe([label(63), label(63), label(63), label(61)].join('.'));
    expect(readName(Uint8Array.from(name(label(63), label(63), label(63), label(62))), 0)).toBeUndefined();
  });

  it('writes every byte but letters, digits, - and _ as \\DDD, so a hostile name is plain text', () => {
    const hostile = name('<script>alert(1)</script>', [0x61, 0x2e, 0x62], [0xff, 0x00, 0x0a], 'MiXeD');
    const got = readName(Uint8Array.from(hostile), 0)?.name;
    expect(got).toBe('\\060script\\062alert\\0401\\041\\060\\047script\\062.a\\046b.\\255\\000\\010.mixed');
    expect(got).toMatch(/^[a-z0-9_\\.-]+$/);
  });

  it('gives nothing for a name cut short, or a label type not in use', () => {
    const whole = name('cut', 'test');
    for (let length = 0; length < whole.length; length++) expect(readName(Uint8Array.from(whole.slice(0, length)), 0)).toBeUndefined();
    expect(readName(Uint8Array.from([0x40, 0x61, 0]), 0)).toBeUndefined();
  });
});

describe('parseDnsResponse, on messages no server should send', () => {
  const q = name('a', 'test');
  const atQuestion = pointer(QUESTION_AT);

  it('reads a TTL with its top bit set as 0, and caps a longer one at a week', () => {
    expect(parseDnsResponse(response(q, [A(atQuestion, 0xffffffff, 192, 0, 2, 1)]))).toEqual([
      { address: '192.0.2.1', names: ['a.test'], ttlSeconds: 0 },
    ]);
    expect(parseDnsResponse(response(q, [A(atQuestion, 0x7fffffff, 192, 0, 2, 1)]))[0]?.ttlSeconds).toBe(7 * 24 * 3600);
  });

  it('ends a CNAME chain that loops where it repeats, and names no address the chain does not reach', () => {
    const b = name('b', 'test');
    const bAt = QUESTION_AT + q.length + 4 + atQuestion.length + 10;
    const message = response(q, [
      record(atQuestion, 5, 60, b), // a.test → b.test
      record(pointer(bAt), 5, 60, atQuestion), // b.test → a.test
      A(name('c', 'test'), 60, 192, 0, 2, 9), // an address of a name nobody asked for
    ]);
    expect(parseDnsResponse(message)).toEqual([]);
  });

  it('reads no address of another class, another length, a query or an error', () => {
    expect(parseDnsResponse(response(q, [record(atQuestion, 1, 60, [192, 0, 2, 1], 3)]))).toEqual([]);
    expect(parseDnsResponse(response(q, [record(atQuestion, 1, 60, [192, 0, 2, 1, 5])]))).toEqual([]);
    expect(parseDnsResponse(response(q, [A(atQuestion, 60, 192, 0, 2, 1)], 0x0100))).toEqual([]);
    expect(parseDnsResponse(response(q, [A(atQuestion, 60, 192, 0, 2, 1)], 0x8183))).toEqual([]);
  });

  it('keeps the records before a cut and none after it, at every length', () => {
    const whole = response(q, [A(atQuestion, 60, 192, 0, 2, 1), A(atQuestion, 60, 192, 0, 2, 2)]);
    const firstEnds = whole.length - (atQuestion.length + 14);
    for (let length = 0; length <= whole.length; length++) {
      const got = parseDnsResponse(whole.subarray(0, length)).map((r) => r.address);
      expect(got).toEqual(length === whole.length ? ['192.0.2.1', '192.0.2.2'] : length >= firstEnds ? ['192.0.2.1'] : []);
    }
  });
});

describe('dnsMessagesOfPacket', () => {
  const udp = (payload: number[], fragment = 0) => {
    const total = 28 + payload.length;
    return Uint8Array.from([
      0x45,
      0,
      ...u16(total),
      0,
      0,
      ...u16(fragment),
      64,
      17,
      0,
      0,
      127,
      0,
      0,
      11,
      127,
      0,
      0,
      1,
      ...u16(53),
      ...u16(40000),
      ...u16(8 + payload.length),
      0,
      0,
      ...payload,
    ]);
  };

  it('skips a fragment: its payload is not a whole message', () => {
    expect(dnsMessagesOfPacket(udp([1, 2, 3]))).toEqual([Uint8Array.from([1, 2, 3])]);
    expect(dnsMessagesOfPacket(udp([1, 2, 3], 0x2000))).toEqual([]); // more fragments
    expect(dnsMessagesOfPacket(udp([1, 2, 3], 0x0010))).toEqual([]); // a later one
  });

  it('reads the messages of a TCP segment up to the one that runs on into the next', () => {
    const tcp = captured.find((p) => p.what.startsWith('segments from port 53') && dnsMessagesOfPacket(p.packet).length === 1)!.packet;
    const ipHeader = (tcp[0]! & 0x0f) * 4;
    const payload = ipHeader + (tcp[ipHeader + 12]! >> 4) * 4;
    const message = Uint8Array.from(tcp.subarray(payload + 2));
    // Two whole messages, then the length of a third with half its bytes: IPv4 total length grown to match.
    const framed = [
      ...u16(message.length),
      ...message,
      ...u16(message.length),
      ...message,
      ...u16(message.length),
      ...message.subarray(0, 10),
    ];
    const segment = Uint8Array.from([...tcp.subarray(0, payload), ...framed]);
    segment.set(u16(segment.length), 2);
    expect(dnsMessagesOfPacket(segment).map((m) => Uint8Array.from(m))).toEqual([message, message]);
  });
});

/** A small, seeded generator (mulberry32): the same mutations every run, any failure replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every name the message holds: what readName reads at any offset of it. */
function namesHeld(message: Uint8Array): Set<string> {
  const names = new Set<string>();
  for (let at = 0; at < message.length; at++) {
    const got = readName(message, at);
    if (got) names.add(got.name);
  }
  return names;
}

/** The 4 or 16 bytes of an address as the parser writes it. */
function addressBytes(address: string): Buffer {
  if (!address.includes(':')) return Buffer.from(address.split('.').map(Number));
  const [head = '', tail = ''] = address.split('::');
  const groups = (t: string) => (t ? t.split(':') : []);
  const all = [...groups(head), ...Array<string>(8 - groups(head).length - groups(tail).length).fill('0'), ...groups(tail)];
  return Buffer.from(all.flatMap((g) => u16(parseInt(g, 16))));
}

describe('fuzzing parseDnsResponse and dnsMessagesOfPacket with mutated answers', () => {
  it('never throws, and gives only names and addresses the bytes held, over 20,000 mutations', () => {
    const next = random(24);
    const seeds = captured.map((c) => c.packet);
    const wrong: string[] = [];
    let named = 0;
    const check = (message: Uint8Array) => {
      const resolved = parseDnsResponse(message);
      if (resolved.length === 0) return;
      const held = namesHeld(message);
      const bytes = Buffer.from(message);
      for (const r of resolved) {
        for (const n of r.names) if (!held.has(n)) wrong.push(`name ${n}`);
        if (!bytes.includes(addressBytes(r.address))) wrong.push(`address ${r.address}`);
        if (!(r.ttlSeconds >= 0 && r.ttlSeconds <= 7 * 24 * 3600)) wrong.push(`ttl ${r.ttlSeconds}`);
        named++;
      }
    };
    for (let i = 0; i < 20_000; i++) {
      let bytes = Uint8Array.from(seeds[i % seeds.length]!);
      const mutations = 1 + Math.floor(next() * 8);
      for (let m = 0; m < mutations; m++) {
        const at = Math.floor(next() * bytes.length);
        const kind = next();
        if (kind < 0.4) bytes[at] = Math.floor(next() * 256);
        else if (kind < 0.6)
          bytes[at] = 0xc0 | Math.floor(next() * 4); // a pointer's first byte
        else if (kind < 0.8)
          bytes = bytes.subarray(0, at); // cut
        else bytes[at]! ^= 1 << Math.floor(next() * 8);
      }
      for (const message of dnsMessagesOfPacket(bytes)) check(message);
      // The bytes after an IPv4 and UDP header as a message, whatever the headers now say.
      check(bytes.subarray(28));
    }
    expect(wrong).toEqual([]);
    // The mutations left many answers readable: the checks above ran on real output.
    expect(named).toBeGreaterThan(1000);
  });
});
