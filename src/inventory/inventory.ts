import type Docker from 'dockerode';
import { createInterface } from 'node:readline';
import pLimit from 'p-limit';
import { DockerUnavailableError, errorMessage } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { INVENTORY_ACTIONS, containerFromInspect, inventoryChangeOf, type Container } from './container.js';
import { ContainerList, DockerEvent, InspectAnswer, NetworkList, answerExcerpt } from './dockerAnswers.js';
import { networkFromListEntry, networksByIdAndName, type DockerNetwork } from './network.js';

export interface InventoryOptions {
  /** The client for request/answer calls (with a timeout). */
  docker: Docker;
  /** The client for the event stream (no timeout: the stream is idle between events). */
  events: Docker;
  log: Logger;
  /** How old the last full list may be before a scrape lists again: the safety net for missed events. */
  relistIntervalMs?: number;
  /** Inspect calls in flight at once when many containers are new. */
  inspectConcurrency?: number;
  now?: () => number;
}

interface StatusCodeError {
  statusCode?: number;
}

/**
 * The running containers, cached. Kept fresh by the Docker event stream: an event marks a
 * container to inspect again (start, rename, network change) or to forget (die, destroy).
 * The work is done lazily by the next snapshot(), during a scrape, never by a timer. A full
 * list runs when the stream (re)connects and when the last list is older than the re-list
 * interval. So a steady host costs no Docker API call per scrape, and a container is
 * inspected once per change, never once per scrape.
 */
export class ContainerInventory {
  readonly #docker: Docker;
  readonly #eventsClient: Docker;
  readonly #log: Logger;
  readonly #relistIntervalMs: number;
  readonly #limit: ReturnType<typeof pLimit>;
  readonly #now: () => number;

  readonly #containers = new Map<string, Container>();
  readonly #stale = new Set<string>();
  readonly #malformed = new Set<string>();
  /** By id and by name (networksByIdAndName). */
  #networks = new Map<string, DockerNetwork>();
  #networksStale = false;
  /** The network list made during the snapshot in progress: at most one per snapshot. */
  #networksListing: Promise<void> | undefined;
  #stream: NodeJS.ReadableStream | undefined;
  #streamUp = false;
  #lastListAt = Number.NEGATIVE_INFINITY;
  #available: boolean | undefined;
  #stopped = false;

  constructor(options: InventoryOptions) {
    this.#docker = options.docker;
    this.#eventsClient = options.events;
    this.#log = options.log;
    this.#relistIntervalMs = options.relistIntervalMs ?? 60_000;
    this.#limit = pLimit(options.inspectConcurrency ?? 8);
    this.#now = options.now ?? Date.now;
  }

  /**
   * The running containers now. Throws DockerUnavailableError when the Docker API does not
   * answer; the cache is then kept but not trusted, and the next call tries again.
   */
  async snapshot(): Promise<Container[]> {
    if (this.#stopped) throw new DockerUnavailableError('the inventory is stopped', undefined);
    this.#networksListing = undefined;
    try {
      if (!this.#streamUp) {
        await this.#connectEvents();
        await this.#listAll();
      } else if (this.#now() - this.#lastListAt > this.#relistIntervalMs) {
        await this.#listAll();
      } else {
        if (this.#networksStale) await this.#listNetworks();
        if (this.#stale.size > 0) await this.#refresh([...this.#stale]);
      }
    } catch (error) {
      this.#closeEvents();
      this.#setAvailable(false, error);
      throw new DockerUnavailableError(`Docker API unreachable: ${errorMessage(error)}`, error);
    }
    this.#setAvailable(true);
    return [...this.#containers.values()];
  }

  /** The networks as of the last snapshot (their address scope and bridge subnets). */
  networks(): DockerNetwork[] {
    return [...new Set(this.#networks.values())];
  }

  stop(): void {
    this.#stopped = true;
    this.#closeEvents();
  }

  #setAvailable(available: boolean, error?: unknown): void {
    if (this.#available === available) return;
    this.#available = available;
    if (available) this.#log.info('Docker API reachable, inventory synchronised');
    else this.#log.error({ err: error }, 'Docker API unreachable; reporting outpost_up 0 until it answers');
  }

  async #listAll(): Promise<void> {
    const listedAt = this.#now();
    const answer: unknown = await this.#docker.listContainers({ filters: { status: ['running'] } });
    const running = ContainerList.safeParse(answer);
    if (!running.success) throw new Error(`malformed container list from the Docker API: ${answerExcerpt(answer)}`);
    const ids = new Set(running.data.map((c) => c.Id));
    // A container's address scope comes from its networks: know them before inspecting it.
    await this.#listNetworks();
    for (const id of this.#containers.keys()) if (!ids.has(id)) this.#containers.delete(id);
    for (const id of this.#stale) if (!ids.has(id)) this.#stale.delete(id);
    // Inspect only what is new or marked stale by an event; the rest is already known.
    await this.#refresh([...ids].filter((id) => !this.#containers.has(id) || this.#stale.has(id)));
    this.#lastListAt = listedAt;
  }

  /** Networks are listed with the containers, and again when one is created or destroyed; at most once a snapshot. */
  #listNetworks(): Promise<void> {
    this.#networksListing ??= this.#fetchNetworks();
    return this.#networksListing;
  }

  async #fetchNetworks(): Promise<void> {
    const answer: unknown = await this.#docker.listNetworks();
    const entries = NetworkList.safeParse(answer);
    if (!entries.success) throw new Error(`malformed network list from the Docker API: ${answerExcerpt(answer)}`);
    this.#networks = networksByIdAndName(entries.data.map(networkFromListEntry));
    this.#networksStale = false;
  }

  async #refresh(ids: string[]): Promise<void> {
    await Promise.all(ids.map((id) => this.#limit(() => this.#inspect(id))));
  }

  async #inspect(id: string): Promise<void> {
    this.#stale.delete(id);
    try {
      const raw: unknown = await this.#docker.getContainer(id).inspect();
      const parsed = InspectAnswer.safeParse(raw);
      if (!parsed.success) {
        // One bad answer costs that container, not the scrape; said once per container.
        this.#containers.delete(id);
        if (!this.#malformed.has(id)) {
          this.#malformed.add(id);
          this.#log.warn(
            { id, answer: answerExcerpt(raw), problem: parsed.error.issues[0]?.message },
            'malformed inspect answer from the Docker API; container skipped',
          );
        }
        return;
      }
      this.#malformed.delete(id);
      const answer = parsed.data;
      let container = containerFromInspect(answer, this.#networks);
      // On a network created after the last list (its create event not yet read): list again,
      // once per snapshot (Podman's default network is in no list under the name it gives).
      const unknown = Object.entries(answer.NetworkSettings?.Networks ?? {}).some(
        ([name, e]) => !this.#networks.has(e.NetworkID ?? '') && !this.#networks.has(name),
      );
      if (container && unknown) {
        await this.#listNetworks();
        container = containerFromInspect(answer, this.#networks);
      }
      if (container) this.#containers.set(id, container);
      else this.#containers.delete(id);
    } catch (error) {
      // Gone between the event or list and the inspect: not a fault.
      if ((error as StatusCodeError).statusCode === 404) this.#containers.delete(id);
      else {
        this.#stale.add(id);
        throw error;
      }
    }
  }

  async #connectEvents(): Promise<void> {
    const stream = await this.#eventsClient.getEvents({
      // Only the actions that change the inventory: a host busy with `docker exec` (health checks,
      // the exec source) would otherwise send three events per exec for nothing.
      filters: { type: ['container', 'network'], event: [...INVENTORY_ACTIONS] },
    });
    this.#stream = stream;
    this.#streamUp = true;
    // One JSON object a line (NDJSON), however the chunks split them.
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    lines.on('line', (line) => {
      if (line.trim()) this.#onEvent(line);
    });
    const onBreak = (error?: Error) => {
      if (this.#stream !== stream) return;
      this.#streamUp = false;
      this.#stream = undefined;
      if (!this.#stopped) {
        this.#log.warn({ err: error }, 'Docker event stream ended; the next scrape reconnects and lists again');
      }
    };
    stream.on('error', onBreak);
    // readline passes the stream's error on: the same break, said once.
    lines.on('error', onBreak);
    stream.on('end', () => {
      onBreak();
    });
    stream.on('close', () => {
      onBreak();
    });
  }

  #onEvent(line: string): void {
    let event: DockerEvent;
    try {
      event = DockerEvent.parse(JSON.parse(line));
    } catch {
      this.#log.warn({ line: line.slice(0, 200) }, 'Docker event is not JSON of an event; ignored');
      return;
    }
    const change = inventoryChangeOf(event);
    if (!change) return;
    if (change.kind === 'networks') {
      this.#networksStale = true;
      return;
    }
    if (change.kind === 'remove') {
      this.#containers.delete(change.id);
      this.#stale.delete(change.id);
    } else {
      this.#stale.add(change.id);
    }
  }

  #closeEvents(): void {
    const stream = this.#stream;
    this.#stream = undefined;
    this.#streamUp = false;
    // dockerode types it as NodeJS.ReadableStream; it is the HTTP response, which can be destroyed.
    (stream as { destroy?: () => void } | undefined)?.destroy?.();
  }
}
