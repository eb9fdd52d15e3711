import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EbpfDnsAnswers } from '../../../src/names/ebpfDnsAnswers.js';
import { receivedPackets } from '../../../src/names/dnsAnswersAddon.js';
import { PeerNames } from '../../../src/names/peerNames.js';
import { ResolvedNames } from '../../../src/names/resolvedNames.js';
import type { NetNamespace } from '../../../src/namespaces/netNamespaces.js';
import { client, server } from '../../support/connectionFixtures.js';

/** What the ebpf source's drainDns() gave after one lookup in a namespace (fixtures/captureEbpfDns.mjs). */
const captured = JSON.parse(readFileSync(new URL('fixtures/ebpf-dns.json', import.meta.url), 'utf8')) as {
  namespaceInode: number;
  records: string;
};
const records = Buffer.from(captured.records, 'hex');

/** The program's output as the source hands it: drained once, then empty. */
function drained(lost = 0) {
  let left = [records];
  return { drain: () => left.shift() ?? Buffer.alloc(0), lost: () => lost, refill: () => (left = [records]) };
}

const asker: NetNamespace = { id: `net:[${captured.namespaceInode}]`, host: false, containers: [client] };
const other: NetNamespace = { id: 'net:[4026530000]', host: false, containers: [server] };

describe('EbpfDnsAnswers', () => {
  it('gives each packet to the container namespace that received it, by its inode', () => {
    const [packet] = receivedPackets(records);
    expect(packet?.netns).toBe(captured.namespaceInode);
    const read = new EbpfDnsAnswers(drained()).read([other, asker]);
    expect(read.map((r) => [r.namespace.id, r.packets.length])).toEqual([[asker.id, 1]]);
    // From the IP header on: IPv4, UDP from port 53.
    const ip = read[0]!.packets[0]!.packet;
    expect([ip[0]! >> 4, ip[9], (ip[20]! << 8) | ip[21]!]).toEqual([4, 17, 53]);
  });

  it("drops the host's packets, and those of a namespace no container is in", () => {
    const packets = drained();
    expect(new EbpfDnsAnswers(packets).read([{ ...asker, host: true }, other])).toEqual([]);
    packets.refill();
    expect(new EbpfDnsAnswers(packets).read([])).toEqual([]);
  });

  it('names the address the container resolved, through the names stage', () => {
    const receivedMs = receivedPackets(records)[0]!.receivedMs;
    const names = new ResolvedNames({
      reader: new EbpfDnsAnswers(drained(3)),
      store: new PeerNames({ maxNamesPerContainer: 10, graceMs: 60_000 }),
      now: () => receivedMs + 1_000,
    });
    names.read([asker, other]);
    expect(names.namesOf(client.id, '203.0.113.10')).toEqual(['allowed.test']);
    expect(names.namesOf(client.id, '203.0.113.11')).toEqual(['allowed.test']);
    expect(names.namesOf(server.id, '203.0.113.10')).toEqual([]);
    expect(names.counts()).toMatchObject({ reading: true, answers: 1, droppedPackets: 3 });
  });
});
