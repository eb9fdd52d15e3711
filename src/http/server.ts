import Router from '@koa/router';
import Koa from 'koa';
import type { Collector } from '../collection/collection.js';
import { basicAuth } from './basicAuth.js';
import { errorMessage } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { connectionsJson } from './connectionsJson.js';
import type { Exposition } from '../exposition/exposition.js';
import type { ExpectedLinks } from '../policy/expectedLinks.js';
import { policyReport } from './policyReport.js';
import { suggestPolicy, type SeenLink } from '../policy/policySuggestion.js';
import { mapRoutes } from './mapRoutes.js';
import { namesByLink } from '../names/resolvedNames.js';
import type { EventQuery, EventRing } from '../events/eventRing.js';
import { VERSION } from '../base/version.js';

export interface AppOptions {
  telemetryPath: string;
  /** Requests served at once; more get 503 (0: no bound). */
  maxRequests: number;
  /** Seconds taken off Prometheus' scrape timeout, to answer before it gives up. */
  scrapeTimeoutOffsetSeconds: number;
  collector: Collector;
  exposition: Exposition;
  /** Resolves when the Docker API answers; rejects with the reason when it does not. */
  pingDocker: () => Promise<unknown>;
  /** basic_auth_users of the web configuration as it is now (it can be reloaded); empty: open. */
  basicAuthUsers: () => ReadonlyMap<string, string>;
  /** The expected-links policy, for /policy and /policy/suggest. */
  policy: ExpectedLinks;
  /** The recent unexpected-connection events, for /events. */
  events: EventRing;
  /** How far back /policy/suggest looks (--connections.retention), for its header. */
  connectionsRetention: string;
  log: Logger;
}

/** How often the link map asks for its graph again. */
const MAP_REFRESH_SECONDS = 5;

// A liveness probe (the image's HEALTHCHECK) answers without credentials; it tells nothing.
const OPEN_PATHS = new Set(['/healthz']);

function landingPage(telemetryPath: string): string {
  const link = (href: string, text: string, what: string) => `<li><a href="${href}">${text}</a> — ${what}</li>`;
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>outpost</title></head>
<body>
<h1>outpost ${VERSION}</h1>
<p>Prometheus exporter for the TCP sockets of the containers on this Docker host: what each listens on, whom each is connected to.</p>
<ul>
${link('/map', 'Link map', 'the containers and their links, drawn live, with a text view')}
${link(telemetryPath, 'Metrics', 'Prometheus text exposition')}
${link('/connections', 'Connections', 'the same collection as JSON')}
${link('/policy', 'Policy', 'the expected-links rules in force (file and labels) and their last evaluation, as JSON')}
${link('/policy/suggest', 'Suggested policy', 'a policy file that allows exactly the links seen recently')}
${link('/events', 'Events', 'the recent unexpected connections: who made them, to where, under which rules (?since=, ?container=, ?direction=, ?peer=, ?port=, ?between=a,b)')}
${link('/healthz', 'Health', 'the process is alive')}
${link('/readyz', 'Readiness', 'the Docker API answers')}
</ul>
</body>
</html>
`;
}

/**
 * Every route but the telemetry path's. The options are asked for only when a request comes, so
 * that servedPaths() can read the paths off a router built without them.
 */
function addRoutes(router: Router, options: () => AppOptions): void {
  router.get('/', (ctx) => {
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = landingPage(options().telemetryPath);
  });
  router.get('/connections', async (ctx) => {
    const { collector } = options();
    const collection = await collector.collect();
    ctx.set('X-Outpost-Up', collection.up ? '1' : '0');
    const { connections, figures } = collector.counters;
    ctx.body = connectionsJson(collection, {
      connections: connections.series(),
      sentBytes: figures.series('sentBytes'),
      receivedBytes: figures.series('receivedBytes'),
      retransmits: figures.series('retransmits'),
    });
  });
  router.get('/policy', async (ctx) => {
    const { collector, policy } = options();
    const collection = await collector.collect();
    ctx.set('X-Outpost-Up', collection.up ? '1' : '0');
    ctx.body = policyReport(policy, collection.containers);
  });
  router.get('/policy/suggest', async (ctx) => {
    const { collector, connectionsRetention } = options();
    const collection = await collector.collect();
    // Peers off the host named by the names the container resolved to them, where it did.
    const namesOf = namesByLink(collection.peerNames);
    const seenLink = (container: string, group: SeenLink['group']): SeenLink => {
      const resolved = group.remoteContainer ? [] : namesOf(container, group.remoteAddress);
      return { container, group, ...(resolved.length > 0 ? { names: resolved } : {}) };
    };
    const seen: SeenLink[] = [...collector.counters.connections.series()].map((s) => seenLink(s.container, s.group));
    for (const { container, established } of collection.links) for (const group of established) seen.push(seenLink(container.name, group));
    ctx.set('X-Outpost-Up', collection.up ? '1' : '0');
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = suggestPolicy(seen, collection.containers, `open now or made in the last ${connectionsRetention} (--connections.retention)`);
  });
  router.get('/events', async (ctx) => {
    const query = eventQuery(ctx.query);
    if (typeof query === 'string') {
      ctx.status = 400;
      ctx.type = 'text/plain';
      ctx.body = `${query}\n`;
      return;
    }
    const { events, collector } = options();
    // The events of a collection are made after its scrape is answered: an answer has them all.
    await collector.eventsMade();
    const found = events.query(query);
    ctx.body = {
      events: found,
      next: found.at(-1)?.id ?? query.since ?? 0,
      kept: events.size,
      capacity: events.capacity,
      dropped: events.dropped,
    };
  });
  mapRoutes(router, () => ({ collector: options().collector, refreshSeconds: MAP_REFRESH_SECONDS }));
  router.get('/healthz', (ctx) => {
    ctx.type = 'text/plain';
    ctx.body = 'ok\n';
  });
  router.get('/readyz', async (ctx) => {
    ctx.type = 'text/plain';
    try {
      await options().pingDocker();
      ctx.body = 'ok\n';
    } catch (error) {
      ctx.status = 503;
      ctx.body = `Docker API unreachable: ${errorMessage(error)}\n`;
    }
  });
}

/** Most events one answer of /events holds: `next` pages on. */
const EVENTS_PAGE = 1000;

/** /events' query string as an EventQuery, or why it is not one. */
export function eventQuery(query: Record<string, string | string[] | undefined>): EventQuery | string {
  const one = (name: string): string | undefined => {
    const value = query[name];
    return Array.isArray(value) ? value.at(-1) : value;
  };
  const out: EventQuery = { limit: EVENTS_PAGE };
  const since = one('since');
  if (since !== undefined) {
    if (!/^\d+$/.test(since)) return `since: "${since}" is not an event id (a whole number)`;
    out.since = Number(since);
  }
  const limit = one('limit');
  if (limit !== undefined) {
    if (!/^\d+$/.test(limit) || Number(limit) < 1) return `limit: "${limit}" is not a whole number above 0`;
    out.limit = Math.min(Number(limit), EVENTS_PAGE);
  }
  for (const name of ['container', 'direction', 'peer', 'port'] as const) {
    const value = one(name);
    if (value !== undefined && value !== '') out[name] = value;
  }
  const between = one('between');
  if (between !== undefined && between !== '') {
    const ends = between.split(',');
    if (ends.length !== 2 || !ends[0] || !ends[1]) return `between: "${between}" is not two ends, a,b`;
    out.between = [ends[0], ends[1]];
  }
  return out;
}

/**
 * What the server serves besides the telemetry path, read off its router: exact paths, and the
 * prefixes whose every path it owns (the map's headers apply to all of /map/…).
 */
export function servedPaths(): { exact: string[]; prefixes: string[] } {
  const router = new Router();
  addRoutes(router, () => {
    throw new Error('servedPaths() serves no request');
  });
  const paths = (middleware: boolean) =>
    router.stack.flatMap((l) => (typeof l.path === 'string' && (l.methods.length === 0) === middleware ? [l.path] : []));
  const exact = paths(false);
  const prefixes = paths(true);
  return { exact: [...new Set(exact)], prefixes: [...new Set(prefixes)] };
}

/** Whether `path` is one the server already serves (servedPaths): the telemetry path may not take it. */
export function isServedPath(path: string, served = servedPaths()): boolean {
  return served.exact.includes(path) || served.prefixes.some((p) => path === p || path.startsWith(`${p}/`));
}

export function createApp(options: AppOptions): Koa {
  const { telemetryPath, collector, exposition, log, maxRequests, scrapeTimeoutOffsetSeconds } = options;
  const authenticate = basicAuth(options.basicAuthUsers);
  const app = new Koa();
  const router = new Router();
  let inFlight = 0;

  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      log.error({ err: error, path: ctx.path }, 'request failed');
      ctx.status = 500;
      ctx.type = 'text/plain';
      ctx.body = `internal error: ${errorMessage(error)}\n`;
    }
  });

  // A bound on concurrent requests, as node_exporter's --web.max-requests.
  app.use(async (ctx, next) => {
    if (maxRequests > 0 && inFlight >= maxRequests) {
      ctx.status = 503;
      ctx.type = 'text/plain';
      ctx.body = `too many concurrent requests (--web.max-requests=${maxRequests})\n`;
      return;
    }
    inFlight++;
    try {
      await next();
    } finally {
      inFlight--;
    }
  });

  app.use(async (ctx, next) => {
    await (OPEN_PATHS.has(ctx.path) ? next() : authenticate(ctx, next));
  });

  router.get(telemetryPath, async (ctx) => {
    // Prometheus says how long it waits; answer with what is ready a little before that.
    const timeout = Number(ctx.get('X-Prometheus-Scrape-Timeout-Seconds'));
    const collection =
      Number.isFinite(timeout) && timeout > 0
        ? await collector.collectWithin((timeout - scrapeTimeoutOffsetSeconds) * 1000)
        : await collector.collect();
    const page = await exposition.render(collection, collector.counters);
    ctx.type = exposition.contentType;
    ctx.body = page;
  });
  addRoutes(router, () => options);

  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
