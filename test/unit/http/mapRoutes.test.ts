import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import Router from '@koa/router';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapRoutes } from '../../../src/http/mapRoutes.js';

/** The map's assets as a browser gets them: compressed when it asks, 304 when it has them already. */
const served = readFileSync(new URL('../../../dist/ui/map.js', import.meta.url));
let server: ReturnType<Koa['listen']>;
let port: number;

function get(path: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
    })
      .on('error', reject)
      .end();
  });
}

beforeAll(async () => {
  const app = new Koa();
  const router = new Router();
  mapRoutes(router, () => {
    throw new Error('the assets need no collection');
  });
  app.use(router.routes());
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => {
  server.close();
});

describe("the link map's assets", () => {
  it('are gzipped for a browser that takes gzip, and whole for one that does not', async () => {
    const gzipped = await get('/map/map.js', { 'Accept-Encoding': 'gzip' });
    expect(gzipped.status).toBe(200);
    expect(gzipped.headers['content-encoding']).toBe('gzip');
    expect(gzipped.body.length).toBeLessThan(served.length / 2);
    expect(gunzipSync(gzipped.body).equals(served)).toBe(true);
    const plain = await get('/map/map.js', { 'Accept-Encoding': 'identity' });
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.equals(served)).toBe(true);
    expect(plain.headers['content-type']).toBe('text/javascript; charset=utf-8');
  });

  it('answer 304 with no body when the browser has them (If-None-Match), 200 when it has another', async () => {
    const first = await get('/map/map.js', { 'Accept-Encoding': 'gzip' });
    const tag = first.headers.etag as string;
    expect(tag).toMatch(/^(W\/)?"/);
    expect(first.headers['cache-control']).toBe('no-cache');
    const again = await get('/map/map.js', { 'Accept-Encoding': 'gzip', 'If-None-Match': tag });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    const other = await get('/map/map.js', { 'Accept-Encoding': 'gzip', 'If-None-Match': '"another"' });
    expect(other.status).toBe(200);
  });
});
