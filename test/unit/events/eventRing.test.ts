import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/base/log.js';
import type { ConnectionEvent } from '../../../src/events/connectionEvent.js';
import { EventLog } from '../../../src/events/eventLog.js';
import { EventRing } from '../../../src/events/eventRing.js';
import { eventQuery } from '../../../src/http/server.js';

const event = (container: string, port: number | string = 8080): Omit<ConnectionEvent, 'id'> => ({
  time: '2026-12-03T06:00:00.000Z',
  kind: 'unexpected_connection',
  container,
  image: 'busybox:1',
  composeProject: '',
  composeService: '',
  direction: 'outbound',
  peer: { container: 'db', address: '10.0.0.2' },
  port,
  process: { pid: 42, name: 'nc', executable: '/bin/busybox' },
  verdict: { side: 'client', container },
  rules: [{ id: `label:${container}:outbound:1`, origin: `container ${container}, label outpost.allow.outbound="api:8080"` }],
  allow: 'outpost.allow.outbound=api:8080,db:8080',
});

describe('EventRing', () => {
  it('keeps the newest `capacity` events, ids increasing, and pages by id', () => {
    const ring = new EventRing(3);
    for (const name of ['a', 'b', 'c', 'd', 'e']) ring.add(event(name));
    expect(ring.size).toBe(3);
    expect(ring.dropped).toBe(2);
    expect(ring.query().map((e) => [e.id, e.container])).toEqual([
      [3, 'c'],
      [4, 'd'],
      [5, 'e'],
    ]);
    expect(ring.query({ since: 3 }).map((e) => e.id)).toEqual([4, 5]);
    expect(ring.query({ since: 3, limit: 1 }).map((e) => e.id)).toEqual([4]);
    expect(ring.query({ container: 'd' }).map((e) => e.id)).toEqual([4]);
    expect(ring.query({ peer: '10.0.0.2', port: '8080', direction: 'outbound' })).toHaveLength(3);
    expect(ring.query({ peer: 'db', direction: 'inbound' })).toEqual([]);
    // A link by its two ends, in either order: the event's container and its peer.
    expect(ring.query({ between: ['db', 'e'] }).map((e) => e.id)).toEqual([5]);
    expect(ring.query({ between: ['e', '10.0.0.2'] }).map((e) => e.id)).toEqual([5]);
    expect(ring.query({ between: ['e', 'api'] })).toEqual([]);
  });
});

describe('EventLog', () => {
  const logged = () => {
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
    return { log: createLogger('info', 'logfmt', stream), lines: () => text.split('\n').filter((l) => l !== '') };
  };

  it("logs a link's first event at once, then one line per interval with the count of the others", () => {
    const { log, lines } = logged();
    const events = new EventLog(log, 60_000);
    const ring = new EventRing(10_000);
    events.record(ring.add(event('api')), 0);
    for (let i = 0; i < 999; i++) events.record(ring.add(event('api')), 1000 + i);
    events.record(ring.add(event('api', 9090)), 2000); // another link: its own first line
    expect(lines()).toHaveLength(2);
    expect(lines()[0]).toMatch(
      /event_id=1 kind=unexpected_connection container=api .*pid=42 process=nc executable=\/bin\/busybox .*msg="unexpected connection"$/,
    );
    events.flush(59_999);
    expect(lines()).toHaveLength(2);
    events.flush(60_000);
    expect(lines()).toHaveLength(3);
    expect(lines()[2]).toMatch(/event_id=1000 .*port=8080 .*repeats=999 .*msg="unexpected connection, repeated"$/);
    // Quiet for a whole interval: the next event is said at once again.
    events.flush(120_000);
    events.record(ring.add(event('api')), 130_000);
    expect(lines()).toHaveLength(4);
    expect(lines()[3]).not.toMatch(/repeats=/);
  });
});

describe('GET /events query', () => {
  it('takes since, limit and the link filters; says which parameter is wrong', () => {
    expect(eventQuery({ since: '12', container: 'api', port: '8080', peer: '', limit: '5' })).toEqual({
      since: 12,
      limit: 5,
      container: 'api',
      port: '8080',
    });
    expect(eventQuery({})).toEqual({ limit: 1000 });
    expect(eventQuery({ limit: '100000' })).toEqual({ limit: 1000 });
    expect(eventQuery({ since: 'x' })).toBe('since: "x" is not an event id (a whole number)');
    expect(eventQuery({ limit: '0' })).toBe('limit: "0" is not a whole number above 0');
    expect(eventQuery({ between: 'stray,db' })).toEqual({ limit: 1000, between: ['stray', 'db'] });
    expect(eventQuery({ between: 'stray' })).toBe('between: "stray" is not two ends, a,b');
  });
});
