import { readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Container } from '../inventory/container.js';
import type { AttributedSocket } from '../attribution/attribution.js';
import type { Logger } from '../base/log.js';
import { byKey } from '../base/byKey.js';
import type { LinkContext } from '../links/containerLinks.js';
import { groupKey, type EstablishedGroup } from '../links/linkGroups.js';
import type { Explanation, PolicyEvaluation } from '../policy/expectedLinks.js';
import { connectionKey } from '../sockets/socketKeys.js';
import { readSocketHolders } from '../sockets/socketOwners.js';
import { connectFailureReason, type ConnectFailureReason } from '../sockets/tcpSocket.js';
import { eventLinkKey, type ConnectionEvent, type EventProcess } from './connectionEvent.js';
import { EventLog } from './eventLog.js';
import { EventRing } from './eventRing.js';
import { ConnectionTally } from './connectionTally.js';

/** What one collection gives the events: its new connection ends, its failed connects, and how they were judged. */
export interface EventsInput {
  /** Ends of the connections first seen in this collection (ConnectionLedger.observe). */
  newEnds: readonly AttributedSocket[];
  /** Connects that failed since the last collection (sources with events). */
  failedConnects: readonly AttributedSocket[];
  context: LinkContext;
  judged: PolicyEvaluation;
  /** The running containers, by which the policy names peers. */
  containers: readonly Container[];
  /** The names a container resolved to an address (src/names/); none known without it. */
  namesOf?: (containerId: string, address: string) => string[];
}

/** One end an event is made of: the container's end, its link's labels, why it is unexpected. */
export interface EventSubject {
  end: AttributedSocket & { container: Container };
  group: Omit<EstablishedGroup, 'count'>;
  /** groupKey(group). */
  key: string;
  explanation: Explanation & { verdict: { kind: 'unexpected' } };
  reason?: ConnectFailureReason;
}

type Explain = (container: Container, group: Omit<EstablishedGroup, 'count'>) => Explanation;

/** An end of a connection on an unexpected link, with its link's labels and their key. */
interface End {
  end: AttributedSocket & { container: Container };
  group: Omit<EstablishedGroup, 'count'>;
  key: string;
}

const isUnexpected = (e: Explanation): e is Explanation & { verdict: { kind: 'unexpected' } } => e.verdict.kind === 'unexpected';

/** An end of a container: narrowed, not copied (a storm makes thousands a collection). */
const ofContainer = (end: AttributedSocket): end is AttributedSocket & { container: Container } => end.container !== undefined;

/**
 * The ends to make events of: one per unexpected connection (both ends of a connection between
 * two containers are one connection: the end of the container whose rules refused it speaks for
 * it, else the other), and one per failed connect the policy would not have allowed. `tally`
 * remembers the connections told in the last collections, whose other ends may come now.
 */
export function eventSubjects(input: EventsInput, explain: Explain, tally: ConnectionTally = new ConnectionTally()): EventSubject[] {
  // By container id, then group key (LinkContext.describe's, made once an end): no key is joined an end.
  const unexpected = new Map<string, Set<string>>();
  for (const u of input.judged.unexpected) {
    const keys = byKey(unexpected, u.container.id, () => new Set<string>());
    for (const g of u.newConnections) keys.add(groupKey(g));
  }
  const explained = new Map<string, Map<string, Explanation>>();
  const explainOnce = ({ end, group, key }: End) =>
    byKey(
      byKey(explained, end.container.id, () => new Map<string, Explanation>()),
      key,
      () => explain(end.container, group),
    );

  const subjects: EventSubject[] = [];
  // Arrays, not maps, below a connection: it has one or two sides, and a storm thousands of connections.
  const byConnection = new Map<string, End[]>();
  for (const end of input.newEnds) {
    if (!ofContainer(end)) continue;
    const { group, key } = input.context.describe(end);
    if (!unexpected.get(end.container.id)?.has(key)) continue;
    const connection = connectionKey(end.namespace.id, end);
    const ends = byConnection.get(connection);
    if (ends) ends.push({ end, group, key });
    else byConnection.set(connection, [{ end, group, key }]);
  }
  for (const [connection, ends] of byConnection) {
    const first = ends[0];
    if (!first) continue;
    const explanation = explainOnce(first);
    if (!isUnexpected(explanation)) continue;
    // Its sides: each namespace its ends are in, in the order first seen, with how many.
    const namespaces: string[] = [];
    const counts: number[] = [];
    for (const e of ends) {
      const side = namespaces.indexOf(e.end.namespace.id);
      if (side >= 0) counts[side] = (counts[side] ?? 0) + 1;
      else {
        namespaces.push(e.end.namespace.id);
        counts.push(1);
      }
    }
    const fresh = tally.add(connection, namespaces, counts);
    // Each side's ends of connections not told yet: the last of this collection's. They are told
    // by the side whose container refused them, else by the side with the most.
    const untold = (side: number, k: number): End | undefined => {
      let skip = (counts[side] ?? 0) - (fresh[side] ?? 0) + k;
      for (const e of ends) if (e.end.namespace.id === namespaces[side] && skip-- === 0) return e;
      return undefined;
    };
    const count = Math.max(...fresh);
    const telling = namespaces.findIndex((_, side) => untold(side, 0)?.end.container.name === explanation.verdict.container);
    const fullest = fresh.indexOf(count);
    for (let k = 0; k < count; k++) {
      const told = (telling >= 0 ? untold(telling, k) : undefined) ?? untold(fullest, k) ?? first;
      subjects.push({
        end: told.end,
        group: told.group,
        key: told.key,
        explanation: told.end === first.end ? explanation : (explainOnce(told) as typeof explanation),
      });
    }
  }
  for (const end of input.failedConnects) {
    if (!ofContainer(end)) continue;
    const { group, key } = input.context.describe(end);
    const explanation = explainOnce({ end, group, key });
    if (isUnexpected(explanation)) {
      subjects.push({
        end,
        group,
        key,
        explanation,
        reason: connectFailureReason(end.connectError),
      });
    }
  }
  return subjects;
}

export interface UnexpectedEventsOptions {
  policy: { explain(container: Container, group: Omit<EstablishedGroup, 'count'>, containers: readonly Container[]): Explanation };
  /** The host's /proc: the processes that hold sockets, their names and executables. */
  procfsPath: string;
  log: Logger;
  /** Events kept for GET /events (--events.max). */
  capacity: number;
  /** A link's log lines: its first event at once, then one line with the count per interval (--events.log-interval). */
  logIntervalMs: number;
  now?: () => number;
}

/**
 * The unexpected connections of each collection as events: kept in a bounded ring for GET
 * /events and logged, one line per link per interval. Each names the process that made the
 * connection (outbound) or accepted it (inbound): the ebpf source knows it from the kernel, the
 * others find it among the processes that hold the socket when it is read.
 */
export class UnexpectedEvents {
  readonly ring: EventRing;
  readonly #options: UnexpectedEventsOptions;
  readonly #log: EventLog;
  readonly #now: () => number;
  /** The connections told lately: a connection's second end, read later, is not a second event. */
  readonly #tally = new ConnectionTally();

  constructor(options: UnexpectedEventsOptions) {
    this.#options = options;
    this.ring = new EventRing(options.capacity);
    this.#log = new EventLog(options.log, options.logIntervalMs);
    this.#now = options.now ?? Date.now;
  }

  /** Makes the events of one collection; returns them. */
  async observe(input: EventsInput): Promise<ConnectionEvent[]> {
    const now = this.#now();
    this.#log.flush(now);
    const subjects = eventSubjects(
      input,
      (container, group) => this.#options.policy.explain(container, group, input.containers),
      this.#tally,
    );
    this.#tally.endCollection();
    if (subjects.length === 0) return [];
    // One await a collection, not one an event: each process is read once (ProcessFinder).
    const finder = new ProcessFinder(this.#options.procfsPath);
    const processes = await Promise.all(subjects.map((s) => finder.of(s.end)));
    const time = new Date(now).toISOString();
    // What a link's events share (a storm is thousands on one link): its peer, its verdict, its log key.
    type Link = { peer: ConnectionEvent['peer']; verdict: ConnectionEvent['verdict']; logKey?: string };
    const links = new Map<string, Map<string, Link>>();
    const made: ConnectionEvent[] = [];
    for (let i = 0; i < subjects.length; i++) {
      const { end, group, key, explanation, reason } = subjects[i] as EventSubject;
      const link = byKey(
        byKey(links, end.container.id, () => new Map<string, Link>()),
        // The link names its explanation (one a link), so its verdict too.
        reason ? `${key}\u0000${reason}` : key,
        (): Link => ({
          peer: peerOf(end.container, group, input.namesOf),
          verdict: { side: explanation.verdict.side, container: explanation.verdict.container },
        }),
      );
      const event: ConnectionEvent = {
        id: 0, // the ring's
        time,
        kind: reason ? 'unexpected_connect_failure' : 'unexpected_connection',
        container: end.container.name,
        image: end.container.image,
        composeProject: end.container.composeProject,
        composeService: end.container.composeService,
        direction: group.direction,
        peer: link.peer,
        port: group.port,
        process: processes[i] as EventProcess,
        verdict: link.verdict,
        rules: explanation.rules,
        allow: explanation.allow ?? '',
      };
      if (reason) event.reason = reason;
      this.ring.add(event);
      link.logKey ??= eventLinkKey(event);
      this.#log.record(event, now, link.logKey);
      made.push(event);
    }
    return made;
  }
}

/** The event's peer; off the host, with the names the container resolved to its address. */
function peerOf(container: Container, group: Omit<EstablishedGroup, 'count'>, namesOf: EventsInput['namesOf']): ConnectionEvent['peer'] {
  const peer = { container: group.remoteContainer, address: group.remoteAddress };
  const names = group.remoteContainer ? [] : (namesOf?.(container.id, group.remoteAddress) ?? []);
  return names.length > 0 ? { ...peer, names } : peer;
}

/** The process of a connection end, from what the source knew or from who holds the socket now; /proc read once a collection. */
class ProcessFinder {
  readonly #procfsPath: string;
  readonly #holders = new Map<string, Promise<Map<number, number> | undefined>>();
  /** Each process read once a collection: a storm on one link is one process, many times. */
  readonly #processes = new Map<string, Promise<{ name?: string; executable?: string }>>();

  constructor(procfsPath: string) {
    this.#procfsPath = procfsPath;
  }

  /** One answer a holder of the collection: a storm on one link is one process, many times. */
  readonly #ofHolder = new Map<string, Promise<EventProcess>>();

  of(end: AttributedSocket): Promise<EventProcess> {
    const { holder } = end;
    if (holder) return byKey(this.#ofHolder, `${holder.pid}\u0000${holder.name}`, () => this.#ofPid(holder.pid, holder.name));
    return this.#ofInode(end);
  }

  /** The kernel's word at connect or listen; its executable only while the process is there. */
  async #ofPid(pid: number, kernelName: string): Promise<EventProcess> {
    const { name, executable } = await this.#read(pid);
    if (name === kernelName && executable !== undefined) return { pid, name, executable };
    return { pid, name: kernelName, unknown: 'the process exited before its executable was read' };
  }

  async #ofInode(end: AttributedSocket): Promise<EventProcess> {
    if (end.inode === 0) {
      return {
        unknown: 'the socket was closed before it was read (no file holds a TIME_WAIT socket); only the ebpf source sees its process',
      };
    }
    const holders = await byKey(this.#holders, end.namespace.id, () =>
      readSocketHolders(this.#procfsPath, [end.namespace]).then(
        (h) => h.get(end.namespace.id),
        () => undefined,
      ),
    );
    const pid = holders?.get(end.inode);
    if (pid === undefined) return { unknown: 'no process of the container held the socket when its descriptors were read' };
    const { name, executable } = await this.#read(pid);
    return {
      pid,
      ...(name !== undefined ? { name } : {}),
      ...(executable !== undefined ? { executable } : { unknown: 'the process exited before it was read' }),
    };
  }

  #read(pid: number): Promise<{ name?: string; executable?: string }> {
    return byKey(this.#processes, String(pid), () => this.#readProcess(pid));
  }

  async #readProcess(pid: number): Promise<{ name?: string; executable?: string }> {
    const dir = join(this.#procfsPath, String(pid));
    const [name, executable] = await Promise.all([
      readFile(join(dir, 'comm'), 'utf8').then(
        (t) => t.trimEnd(),
        () => undefined,
      ),
      readlink(join(dir, 'exe')).catch(() => undefined),
    ]);
    return { ...(name !== undefined ? { name } : {}), ...(executable !== undefined ? { executable } : {}) };
  }
}
