#!/usr/bin/env node
// Bundles the link map's script and style (src/map/client/) with their npm packages into
// dist/ui/, which outpost serves itself: the page loads nothing from anywhere else.
import { mkdir, stat } from 'node:fs/promises';
import { build } from 'esbuild';

const out = new URL('../dist/ui/', import.meta.url).pathname;
await mkdir(out, { recursive: true });
await build({
  entryPoints: { map: 'src/map/client/map.ts' },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2022'],
  platform: 'browser',
  legalComments: 'eof',
  outdir: out,
  logLevel: 'warning',
});
await build({ entryPoints: { map: 'src/map/client/map.css' }, bundle: true, minify: true, outdir: out, logLevel: 'warning' });
for (const name of ['map.js', 'map.css']) console.log(`dist/ui/${name}: ${((await stat(out + name)).size / 1024).toFixed(1)} KiB`);
