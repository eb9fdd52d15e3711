import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { ConnectionEvent } from '../../src/events/connectionEvent.js';
import { installConnstorm } from '../support/connstorm.js';
import { docker, kernelSockets, namespaceCounter, pidOf, processesNamed, waitFor, type Scenario } from '../support/docker.js';
import { test } from '../support/lab.js';
import { procfsCollector } from '../support/collector.js';
import type { TestExporter } from '../support/exporter.js';
import { select } from '../support/exposition.js';
import Docker from 'dockerode';
import type { EventsInput } from '../../src/events/unexpectedEvents.js';
import { containerFromInspect, type Container } from '../../src/inventory/container.js';

const eventsOf = async (exporter: TestExporter, query = ''): Promise<ConnectionEvent[]> => {
  const { status, text } = await exporter.fetchText(`/events${query}`);
  expect(status, text).toBe(200);
  return (JSON.parse(text) as { events: ConnectionEvent[] }).events;
};

/**
 * A client whose label allows only `allowed:8080`: it also calls `stray` on 8080 (a long-lived
 * nc) and on 8081 (a wget the server keeps waiting), and, refused, on 9999. An intruder, which no
 * rule covers, calls `guarded`, whose label allows only the client. Exactly those three calls and
 * the intrusion are unexpected: one event each, naming the process /proc names.
 */
describe.each([['ebpf'], ['netlink']] as const)('unexpected connections as events (%s)', (source) => {
  let scenario: Scenario;
  let exporter: TestExporter;
  const c = { allowed: '', stray: '', client: '', guarded: '', intruder: '' };
  let events: ConnectionEvent[];
  const subnet = source === 'ebpf' ? '10.213.31.0/24' : '10.213.32.0/24';

  test.beforeAll(async ({ lab }) => {
    scenario = lab.scenario(`events-${source}`);
    const net = await scenario.network('net', [subnet]);
    c.allowed = await scenario.run('allowed', ['--network', net], ['nc', '-ll', '-p', '8080', '-e', 'cat']);
    c.stray = await scenario.run('stray', ['--network', net], ['sh', '-c', 'nc -ll -p 8081 -e sleep 8 & nc -ll -p 8080 -e cat']);
    c.client = await scenario.run('client', ['--network', net, '--label', `outpost.allow.outbound=${c.allowed}:8080`], ['sleep', '100000']);
    c.guarded = await scenario.run(
      'guarded',
      ['--network', net, '--label', `outpost.allow.inbound=${c.client}:9000`],
      // The accepting nc keeps its connection (an nc without input would close it at once).
      ['sh', '-c', 'while true; do sleep 100000 | nc -l -p 9000; done'],
    );
    c.intruder = await scenario.run('intruder', ['--network', net], ['sleep', '100000']);
    exporter = await lab.exporter({ socketSource: source });
    await exporter.scrape(); // what runs before the calls is the baseline

    await docker(['exec', '-d', c.client, 'sh', '-c', `sleep 100000 | nc ${c.allowed} 8080`]);
    await docker(['exec', '-d', c.client, 'sh', '-c', `sleep 100000 | nc ${c.stray} 8080`]);
    await docker(['exec', '-d', c.client, 'wget', '-q', '-O', '/dev/null', `http://${c.stray}:8081/`]);
    await docker(['exec', '-d', c.intruder, 'sh', '-c', `sleep 100000 | nc ${c.guarded} 9000`]);
    if (source === 'ebpf') await docker(['exec', c.client, 'sh', '-c', `nc ${c.stray} 9999 </dev/null; true`]);
    await waitFor(
      'the calls to be up',
      async () => (await processesNamed(c.client, 'wget')).length === 1 && (await processesNamed(c.client, 'nc')).length === 2,
    );
    await exporter.scrape();
    events = await eventsOf(exporter);
  }, 60_000);

  it('makes one event per unexpected connection, none of the allowed one', () => {
    const mine = new Set(Object.values(c));
    const seen = events
      .filter((e) => mine.has(e.container))
      .map((e) => `${e.kind} ${e.container} ${e.direction} ${e.peer.container}:${e.port}`);
    expect(seen.sort()).toEqual(
      [
        `unexpected_connection ${c.client} outbound ${c.stray}:8080`,
        `unexpected_connection ${c.client} outbound ${c.stray}:8081`,
        `unexpected_connection ${c.guarded} inbound ${c.intruder}:9000`,
        ...(source === 'ebpf' ? [`unexpected_connect_failure ${c.client} outbound ${c.stray}:9999`] : []),
      ].sort(),
    );
  });

  it('names the process that connected, as /proc names it: pid, name, executable', async () => {
    const ncs = await processesNamed(c.client, 'nc');
    const [wget] = await processesNamed(c.client, 'wget');
    const toStray = events.find((e) => e.container === c.client && e.port === 8080)!;
    // One of the client's two nc (the other calls the allowed server).
    const nc = ncs.find((p) => p.pid === toStray.process.pid);
    expect(nc, JSON.stringify(toStray.process)).toBeDefined();
    expect(toStray.process).toEqual({ pid: nc!.pid, name: 'nc', executable: nc!.executable });
    const fetched = events.find((e) => e.container === c.client && e.port === 8081)!;
    expect(fetched.process).toEqual({ pid: wget!.pid, name: 'wget', executable: wget!.executable });
  });

  it('names the process that accepted an inbound one', async () => {
    const [listening] = await processesNamed(c.guarded, 'nc');
    const intrusion = events.find((e) => e.container === c.guarded)!;
    expect(intrusion.process).toEqual({ pid: listening!.pid, name: 'nc', executable: listening!.executable });
  });

  it('says whose rules refused it, where they were written, and the one line that allows it', () => {
    const toStray = events.find((e) => e.container === c.client && e.port === 8080)!;
    expect(toStray.verdict).toEqual({ side: 'client', container: c.client });
    expect(toStray.rules).toEqual([
      { id: `label:${c.client}:outbound:1`, origin: `container ${c.client}, label outpost.allow.outbound="${c.allowed}:8080"` },
    ]);
    expect(toStray.allow).toBe(`outpost.allow.outbound=${c.allowed}:8080,${c.stray}:8080`);
    const intrusion = events.find((e) => e.container === c.guarded)!;
    expect(intrusion.verdict).toEqual({ side: 'server', container: c.guarded });
    expect(intrusion.allow).toBe(`outpost.allow.inbound=${c.client}:9000,${c.intruder}:9000`);
    expect(intrusion.peer).toMatchObject({ container: c.intruder });
  });

  it('logs each once, and filters /events to one link', async () => {
    for (const e of events.filter((e) => Object.values(c).includes(e.container))) {
      const lines = exporter
        .logs()
        .split('\n')
        .filter((l) => l.includes(`event_id=${e.id} `));
      expect(lines, String(e.id)).toHaveLength(1);
      expect(lines[0]).toContain(`container=${e.container}`);
    }
    const link = await eventsOf(exporter, `?container=${c.client}&direction=outbound&peer=${c.stray}&port=8080`);
    expect(link.map((e) => e.port)).toEqual([8080]);
    const later = await eventsOf(exporter, `?since=${events.at(-1)!.id}`);
    expect(later).toEqual([]);
  });
});

/**
 * A storm on one link: a client that no rule lets call the server opens 1,000 connections a
 * second to it (test/support/native/connstorm.c: connect, close at once), for 30 s, while
 * Prometheus would scrape every second. Each is one event (as many as the connections the kernel
 * made), the ring keeps its bound, and the log says the link once, then once per interval with
 * the count.
 */
describe('a storm of unexpected connections on one link (ebpf)', () => {
  const RATE = 1000;
  const STORM_SECONDS = 30;
  // As Prometheus would scrape: every second.
  const SCRAPE_EVERY_S = 1;
  const LOG_INTERVAL_S = 10;
  const CAPACITY = 2000;
  let exporter: TestExporter;
  let client = '';
  let server = '';
  let counted = 0;
  let accepted = 0;
  let countedAtServer = 0;
  let opened = 0;
  let established = 0;
  let lost = 0;
  let seconds = 0;
  /** Events made before the storm (of the other scenarios of this file, still running). */
  let madeBefore = 0;
  let answer: { events: ConnectionEvent[]; kept: number; capacity: number; dropped: number };

  test.beforeAll(async ({ lab }) => {
    const scenario = lab.scenario('events-storm');
    const net = await scenario.network('net', ['10.213.34.0/24']);
    server = await scenario.run('server', ['--network', net], ['sleep', '100000']);
    client = await scenario.run('client', ['--network', net, '--label', 'outpost.allow.outbound=nobody:1'], ['sleep', '100000']);
    await installConnstorm([server, client]);
    await docker(['exec', '-d', server, '/bin/connstorm', 'serve', '8080']);
    const serverIp = await scenario.ip(server, net);
    exporter = await lab.exporter({ socketSource: 'ebpf', eventsMax: CAPACITY, eventsLogIntervalMs: LOG_INTERVAL_S * 1000 });
    const unexpected = async (end = client, peer = server) =>
      select(await exporter.scrape(), 'container_tcp_unexpected_connections_total', { container: end, remote_container: peer }).reduce(
        (sum, s) => sum + s.value,
        0,
      );
    const before = await unexpected();
    const ring = async () => JSON.parse((await exporter.fetchText(`/events?container=${client}&limit=1`)).text) as typeof answer;
    const atStart = await ring();
    madeBefore = atStart.kept + atStart.dropped;
    const beforeAtServer = await unexpected(server, client);
    const clientPid = await pidOf(client);
    const serverPid = await pidOf(server);
    // 30,000 connections to one server address and port, each leaving the client's end in
    // TIME_WAIT for 60 s, need more ports than the default 28,232 (32768-60999): 64,512 allow 1,075 a second.
    await promisify(execFile)('nsenter', ['-t', String(clientPid), '-n', 'sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65535']);
    const opensBefore = await namespaceCounter(clientPid, 'TcpActiveOpens');
    const acceptsBefore = await namespaceCounter(serverPid, 'TcpPassiveOpens');
    const started = Date.now();
    const storm = docker(['exec', client, '/bin/connstorm', 'connect', serverIp, '8080', String(RATE), String(STORM_SECONDS)]);
    while (Date.now() - started < (STORM_SECONDS + 2) * 1000) {
      await exporter.scrape();
      await new Promise((r) => setTimeout(r, SCRAPE_EVERY_S * 1000));
    }
    established = Number(await storm);
    await exporter.scrape();
    seconds = (Date.now() - started) / 1000;
    counted = (await unexpected()) - before;
    // The kernel's count of the connects the client made: the storm, and nothing else.
    opened = (await namespaceCounter(clientPid, 'TcpActiveOpens')) - opensBefore;
    accepted = (await namespaceCounter(serverPid, 'TcpPassiveOpens')) - acceptsBefore;
    countedAtServer = (await unexpected(server, client)) - beforeAtServer;
    lost = select(await exporter.scrape(), 'outpost_source_records_lost_total').reduce((sum, s) => sum + s.value, 0);
    answer = await ring();
  }, 90_000);

  it('makes one event per connection, keeps at most its capacity, and says what it dropped', () => {
    console.info(
      `storm: ${opened} connections in ${seconds.toFixed(0)} s (${(opened / STORM_SECONDS).toFixed(0)} a second), ${counted} counted unexpected at the client, ${countedAtServer} at the server (${accepted} accepted), ${answer.kept + answer.dropped - madeBefore} events, ${lost} records lost`,
    );
    expect(lost).toBe(0);
    expect(established).toBe(opened);
    // The rate asked, within 5 %: on a machine that cannot make it, this fails, not the counts.
    expect(opened).toBeGreaterThanOrEqual(RATE * STORM_SECONDS * 0.95);
    expect(answer.kept).toBe(CAPACITY);
    expect(answer.capacity).toBe(CAPACITY);
    // Every event of the ring is of the storm's link: made, then kept or dropped; one per connection the kernel made.
    expect(answer.kept + answer.dropped - madeBefore).toBe(opened);
    expect(countedAtServer).toBe(accepted);
    // The client's end: 1 connection in 17,000 missed in some runs at 570 a second, where the
    // kernel hands out the same 4-tuple again within a collection (a known limit of the counting,
    // docs/counting.md); the events, made from both ends, are exact.
    expect(Math.abs(counted - opened)).toBeLessThanOrEqual(Math.ceil(opened / 10_000));
    expect(answer.events[0]).toMatchObject({ container: client, direction: 'outbound', port: 8080, process: { name: 'connstorm' } });
  });

  it('logs the link once, then one line per interval with the count of the others', () => {
    const lines = exporter
      .logs()
      .split('\n')
      .filter((l) => l.includes(`container=${client} `) && l.includes('msg="unexpected connection'));
    // The first at once; then at most one a full interval (the collection after it ends says it).
    expect(lines[0]).not.toContain('repeats=');
    const repeats = lines.slice(1).map((l) => Number(/ repeats=(\d+)/.exec(l)?.[1]));
    expect(lines.length).toBeLessThanOrEqual(1 + Math.ceil(seconds / LOG_INTERVAL_S));
    expect(repeats.length).toBeGreaterThanOrEqual(Math.floor(STORM_SECONDS / LOG_INTERVAL_S) - 1);
    for (const r of repeats) expect(r).toBeGreaterThan(0);
    // The ones not said yet are in the interval still open.
    expect(1 + repeats.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(counted);
  });
});

/**
 * The events of a collection are made once its scrape is answered (the scrape waits for none of
 * them), one collection after another; what is asked of them waits until they are made. The
 * Collector here is in this process, with an events stage that holds until the test lets it go.
 */
describe('events made after the scrape is answered', () => {
  let containers: Container[];
  let client = '';
  let server = '';
  test.beforeAll(async ({ lab }) => {
    const scenario = lab.scenario('events-later');
    const net = await scenario.network('net', ['10.213.36.0/24']);
    server = await scenario.run('server', ['--network', net], ['nc', '-ll', '-p', '8080', '-e', 'cat']);
    client = await scenario.run(
      'client',
      ['--network', net, '--label', 'outpost.allow.outbound=nobody:1'],
      ['sh', '-c', `sleep 100000 | nc ${server} 8080`],
    );
    const serverPid = await pidOf(server);
    await waitFor('the client connected', async () => (await kernelSockets(serverPid)).some((s) => s.state === 'established'));
    const api = new Docker();
    containers = [];
    for (const name of [server, client]) containers.push(containerFromInspect(await api.getContainer(name).inspect())!);
  });

  test.afterAll(async ({ lab }) => {
    await lab.close();
  });

  /** An events stage that keeps what it is given and ends when the test says (`fail`: with an error). */
  const heldEvents = () => {
    const given: EventsInput[] = [];
    const release: ((fail?: Error) => void)[] = [];
    const observe = (input: EventsInput) => {
      given.push(input);
      return new Promise<void>((resolve, reject) => {
        release.push((fail) => {
          if (fail) reject(fail);
          else resolve();
        });
      });
    };
    return { given, release, observe };
  };
  const turns = async (n: number) => {
    for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
  };

  it('answers before the events are made, makes them one collection after another, and reports how they went', async () => {
    const events = heldEvents();
    const collector = procfsCollector(containers, { events });
    const first = await collector.collect();
    expect(first.up).toBe(true);
    // Answered: its events are not begun.
    expect(events.given).toHaveLength(0);
    let made = false;
    void collector.eventsMade().then(() => {
      made = true;
    });
    await turns(3);
    expect(events.given).toHaveLength(1);
    // What it was given is this collection's: the client's connection, judged unexpected.
    expect(events.given[0]!.judged.unexpected.some((u) => u.container.name === client)).toBe(true);

    // The next collection is answered too; its events wait for the first's.
    const second = await collector.collect();
    expect(second.up).toBe(true);
    await turns(3);
    expect(events.given).toHaveLength(1);
    expect(made).toBe(false);

    await new Promise((resolve) => setTimeout(resolve, 100));
    events.release[0]!();
    await turns(3);
    expect(events.given).toHaveLength(2);
    expect(made).toBe(true); // eventsMade() was asked after the first collection: its events are made
    let secondMade = false;
    const secondAllMade = collector.eventsMade().then(() => {
      secondMade = true;
    });
    // A collection now reports the first events, held 100 ms; none were made before the second.
    const third = await collector.collect();
    expect(third.stages.events.success).toBe(true);
    expect(third.stages.events.durationSeconds).toBeGreaterThanOrEqual(0.1);
    expect(second.stages.events).toEqual({ durationSeconds: 0, success: true });

    await turns(3);
    expect(secondMade).toBe(false); // asked after the second: it waits for the second's events
    events.release[1]!(new Error('the events stage failed'));
    await secondAllMade;
    // A failure costs the events, said as the stage's success, not the collection.
    const fourth = await collector.collect();
    expect(fourth.up).toBe(true);
    expect(fourth.stages.events.success).toBe(false);
    await turns(3);
    events.release[2]!(); // the third's; the fourth's is begun once it is made
    await turns(3);
    events.release[3]!();
    await collector.eventsMade();
    expect(events.given).toHaveLength(4);
  });
});
