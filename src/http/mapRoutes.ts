import { readFile } from 'node:fs/promises';
import type Router from '@koa/router';
import compress from 'koa-compress';
import conditional from 'koa-conditional-get';
import etag from '@koa/etag';
import { errorMessage } from '../base/errors.js';
import type { Collector } from '../collection/collection.js';
import { buildLinkGraph } from '../map/linkGraph.js';
import { MAP_CONTENT_SECURITY_POLICY, MAP_ICON, mapPage } from '../map/mapPage.js';

/** The page's script and style, bundled from npm packages by `npm run build` (scripts/build-ui.mjs). */
const ASSETS = { 'map.js': 'text/javascript; charset=utf-8', 'map.css': 'text/css; charset=utf-8' } as const;
type AssetName = keyof typeof ASSETS;
// From src/http/ (tests) and dist/http/ (the program) alike: the package's dist/ui/ (scripts/build-ui.mjs).
const ASSET_DIR = new URL('../../dist/ui/', import.meta.url);

export interface MapRoutesOptions {
  collector: Collector;
  /** How often the page asks for the graph again. */
  refreshSeconds: number;
}

/** /map (the page), /map/graph.json (its data, from the same collection as /metrics) and the page's assets. */
export function mapRoutes(router: Router, options: () => MapRoutesOptions): void {
  // Read once; compressed per request (koa-compress), and answered 304 when the browser has it (ETag).
  const assets = new Map<AssetName, Promise<Buffer>>();
  const asset = (name: AssetName) => {
    let loaded = assets.get(name);
    if (!loaded) {
      loaded = readFile(new URL(name, ASSET_DIR)).catch((error: unknown) => {
        assets.delete(name);
        const reason = (error as NodeJS.ErrnoException).code ?? errorMessage(error);
        throw new Error(`the link map's ${name} is missing from ${ASSET_DIR.pathname} (npm run build makes it): ${reason}`);
      });
      assets.set(name, loaded);
    }
    return loaded;
  };
  // Outermost first: the ETag is the uncompressed body's, so compression comes after it is set.
  const cached = [compress({ threshold: 1024 }), conditional(), etag()];

  router.use('/map', async (ctx, next) => {
    ctx.set('Content-Security-Policy', MAP_CONTENT_SECURITY_POLICY);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    await next();
  });
  router.get('/map', (ctx) => {
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = mapPage(options().refreshSeconds);
  });
  router.get('/map/icon.svg', (ctx) => {
    ctx.type = 'image/svg+xml';
    ctx.set('Cache-Control', 'max-age=86400');
    ctx.body = MAP_ICON;
  });
  router.get('/map/graph.json', async (ctx) => {
    const { collector } = options();
    const collection = await collector.collect();
    ctx.set('X-Outpost-Up', collection.up ? '1' : '0');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = buildLinkGraph({
      up: collection.up,
      atMs: collection.policy?.atMs ?? Date.now(),
      containers: collection.containers,
      links: collection.links,
      counted: collector.counters.connections.series(),
      unexpectedOpen: collection.policy?.unexpected ?? [],
      unexpectedCounted: collector.counters.unexpectedConnections.series(),
      sentBytes: collector.counters.figures.series('sentBytes'),
      receivedBytes: collector.counters.figures.series('receivedBytes'),
      retransmits: collector.counters.figures.series('retransmits'),
      rtt: collection.rtt,
      peerNames: collection.peerNames,
    });
  });
  for (const name of Object.keys(ASSETS) as AssetName[]) {
    router.get(`/map/${name}`, ...cached, async (ctx) => {
      ctx.set('Cache-Control', 'no-cache');
      ctx.type = ASSETS[name];
      ctx.body = await asset(name);
    });
  }
}
