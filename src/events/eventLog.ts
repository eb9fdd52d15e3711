import type { Logger } from '../base/log.js';
import { eventLinkKey, eventPeer, type ConnectionEvent } from './connectionEvent.js';

/** An event as one log line's fields: flat, as logfmt writes them. */
export function eventFields(e: ConnectionEvent): Record<string, string | number> {
  return {
    event_id: e.id,
    kind: e.kind,
    container: e.container,
    image: e.image,
    direction: e.direction,
    peer: eventPeer(e),
    peer_address: e.peer.address,
    ...(e.peer.names ? { peer_names: e.peer.names.join(',') } : {}),
    port: e.port,
    ...(e.process.pid !== undefined ? { pid: e.process.pid } : {}),
    ...(e.process.name !== undefined ? { process: e.process.name } : {}),
    ...(e.process.executable !== undefined ? { executable: e.process.executable } : {}),
    ...(e.process.unknown !== undefined ? { process_unknown: e.process.unknown } : {}),
    refused_by: `${e.verdict.container} (${e.verdict.side === 'client' ? 'outbound' : 'inbound'} rules)`,
    rules: e.rules.map((r) => r.origin).join('; '),
    allow_with: e.allow,
    ...(e.reason ? { reason: e.reason } : {}),
  };
}

/**
 * The events in the log, one line per link per interval: a link's first event at once, the
 * ones after it within the interval counted, and said in one line with the count when the
 * interval is over. A storm on one link cannot flood the log; /events keeps each one.
 */
export class EventLog {
  readonly #log: Logger;
  readonly #intervalMs: number;
  /** Per link: when its interval began, the events since its last line, the last of them. */
  readonly #links = new Map<string, { since: number; repeats: number; last: ConnectionEvent }>();

  constructor(log: Logger, intervalMs: number) {
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  /** `key`: the event's eventLinkKey, when the caller has it for many events of one link. */
  record(event: ConnectionEvent, nowMs: number, key = eventLinkKey(event)): void {
    const link = this.#links.get(key);
    if (link) {
      link.repeats++;
      link.last = event;
      return;
    }
    this.#links.set(key, { since: nowMs, repeats: 0, last: event });
    this.#log.warn(eventFields(event), message(event));
  }

  /** Says the repeats of each link whose interval is over; a link quiet for a whole interval logs its next event at once. */
  flush(nowMs: number): void {
    for (const [key, link] of this.#links) {
      if (nowMs - link.since < this.#intervalMs) continue;
      if (link.repeats === 0) {
        this.#links.delete(key);
        continue;
      }
      this.#log.warn(
        { ...eventFields(link.last), repeats: link.repeats, since: new Date(link.since).toISOString() },
        `${message(link.last)}, repeated`,
      );
      link.since = nowMs;
      link.repeats = 0;
    }
  }
}

function message(e: ConnectionEvent): string {
  return e.kind === 'unexpected_connection' ? 'unexpected connection' : 'unexpected connect, failed';
}
