import { describe, expect, it } from 'vitest';
import type { AttributedSocket } from '../../../src/attribution/attribution.js';
import { ConnectionTally } from '../../../src/events/connectionTally.js';
import { eventSubjects, type EventsInput } from '../../../src/events/unexpectedEvents.js';
import { LinkContext } from '../../../src/links/containerLinks.js';
import type { EstablishedGroup } from '../../../src/links/linkGroups.js';
import type { Explanation, PolicyEvaluation } from '../../../src/policy/expectedLinks.js';
import { capturedCollection, client, clientNs, server, serverNs } from '../../support/connectionFixtures.js';

/** The captured collection: the client's open connection to the server's 8080, at both ends. */
const collection = capturedCollection('a', 'netlink');
const isOpenLink = (s: AttributedSocket) => s.state === 'established' && (s.localPort === 8080 || s.remotePort === 8080);
const [clientEnd, serverEnd] = [clientNs, serverNs].map((ns) => collection.find((s) => s.namespace === ns && isOpenLink(s))!);
const context = new LinkContext({
  sockets: collection,
  namespaces: [clientNs, serverNs],
  peerContainers: [client, server],
  hostAddresses: [],
});

/** The client's rules refuse the link (what the policy would say of a label allowing nothing). */
const refusedByClient = (): Explanation => ({
  verdict: { kind: 'unexpected', side: 'client', container: client.name },
  rules: [{ id: 'label:client', origin: 'label' }],
  allow: 'outpost.allow.outbound=server:8080',
});

/** A collection judged: each end's link unexpected at its container. */
function input(newEnds: AttributedSocket[], failedConnects: AttributedSocket[] = []): EventsInput {
  const unexpected = [clientEnd!, serverEnd!].map((end) => ({
    container: end.container!,
    established: [],
    newConnections: [{ ...context.describe(end).group, count: 1 } satisfies EstablishedGroup],
  }));
  return {
    newEnds,
    failedConnects,
    context,
    judged: { unexpected } as unknown as PolicyEvaluation,
    containers: [client, server],
  };
}

/** Another connection's end on the same 4-tuple: the kernel used it again (a new cookie). */
const again = (end: AttributedSocket): AttributedSocket => ({ ...end, cookie: end.cookie + 1000 });
const told = (subjects: ReturnType<typeof eventSubjects>) => subjects.map((s) => `${s.end.container.name} ${s.end.cookie}`);

describe('eventSubjects: one subject per unexpected connection', () => {
  it('tells a connection seen at both ends once, by the end whose rules refused it', () => {
    const subjects = eventSubjects(input([serverEnd!, clientEnd!]), refusedByClient);
    expect(told(subjects)).toEqual([`${client.name} ${clientEnd!.cookie}`]);
    expect(subjects[0]!.group).toEqual(context.describe(clientEnd!).group);
    expect(subjects[0]!.explanation.allow).toBe('outpost.allow.outbound=server:8080');
  });

  it("tells it once when its ends come in two collections: by the first end seen, not again by the other's", () => {
    const tally = new ConnectionTally();
    expect(told(eventSubjects(input([serverEnd!]), refusedByClient, tally))).toEqual([`${server.name} ${serverEnd!.cookie}`]);
    tally.endCollection();
    expect(eventSubjects(input([clientEnd!]), refusedByClient, tally)).toEqual([]);
  });

  it('tells two connections on one 4-tuple within a collection twice, even with one end of the second still to come', () => {
    const tally = new ConnectionTally();
    const subjects = eventSubjects(input([clientEnd!, serverEnd!, again(serverEnd!)]), refusedByClient, tally);
    // The client's end tells the first; the server's other end the second.
    expect(told(subjects)).toEqual([`${client.name} ${clientEnd!.cookie}`, `${server.name} ${serverEnd!.cookie + 1000}`]);
    tally.endCollection();
    // The second's client end, a collection later: already told.
    expect(eventSubjects(input([again(clientEnd!)]), refusedByClient, tally)).toEqual([]);
  });

  it('tells nothing of a link the policy allows, and each failed connect it would refuse', () => {
    const allowed = (): Explanation => ({ verdict: { kind: 'allowed', rules: ['r'] }, rules: [] });
    expect(eventSubjects(input([serverEnd!, clientEnd!]), allowed)).toEqual([]);
    const failed = { ...clientEnd!, state: 'syn_sent' as const, connectError: 111 };
    const subjects = eventSubjects(input([], [failed]), refusedByClient);
    expect(subjects.map((s) => [s.end.cookie, s.reason])).toEqual([[clientEnd!.cookie, 'refused']]);
  });
});
