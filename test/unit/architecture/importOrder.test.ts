import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * src/'s folders from the ground floor up, as docs/architecture.md draws them: a file may import
 * from its own folder and the folders before it, never from one after (no import runs back up the
 * pipeline). Files at src/'s top (main.ts, config.ts, healthcheck.ts) wire everything and are
 * imported by none of the folders.
 */
const LAYERS = [
  'base',
  'net',
  'inventory',
  'namespaces',
  'sockets',
  'attribution',
  'links',
  'connections',
  'names',
  'policy',
  'events',
  'collection',
  'exposition',
  'map',
  'http',
] as const;

const SRC = resolve(import.meta.dirname, '../../../src');
const TOP = LAYERS.length;

const sourceFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );

/** The layer of a file of src/: its folder's place in LAYERS, TOP for the files at the top; -1 for a folder not in LAYERS. */
function layerOf(file: string): number {
  const [folder, ...rest] = relative(SRC, file).split('/');
  if (rest.length === 0) return TOP;
  return LAYERS.indexOf(folder as (typeof LAYERS)[number]);
}

/** The files of src/ a file imports (relative specifiers, type-only ones too: they tie the design as much). */
function importsOf(file: string, text = readFileSync(file, 'utf8')): string[] {
  return ts
    .preProcessFile(text, true, true)
    .importedFiles.map((f) => f.fileName)
    .filter((s) => s.startsWith('.'))
    .map((s) => resolve(dirname(file), s.replace(/\.js$/, '.ts')));
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));
const name = (f: string) => relative(SRC, f);

/** Each import that runs against LAYERS, as "from → to". */
function againstTheOrder(edges: ReadonlyMap<string, readonly string[]>): string[] {
  return [...edges].flatMap(([from, tos]) => tos.filter((to) => layerOf(to) > layerOf(from)).map((to) => `${name(from)} → ${name(to)}`));
}

/** Every circle of imports among the files, each once, as "a → b → a". */
function circles(edges: ReadonlyMap<string, readonly string[]>): string[] {
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    path.push(f);
    for (const to of edges.get(f) ?? []) {
      if (state.get(to) === 'open') found.push([...path.slice(path.indexOf(to)), to].map(name).join(' → '));
      else if (!state.has(to)) visit(to);
    }
    path.pop();
    state.set(f, 'done');
  };
  for (const f of edges.keys()) if (!state.has(f)) visit(f);
  return found;
}

describe('src/ follows the pipeline (docs/architecture.md)', () => {
  it('has every file in a folder of LAYERS or at the top', () => {
    expect(files.filter((f) => layerOf(f) < 0).map(name)).toEqual([]);
    expect(files.length).toBeGreaterThan(50);
  });

  it('imports only what exists', () => {
    const known = new Set(files);
    expect([...graph].flatMap(([from, tos]) => tos.filter((to) => !known.has(to)).map((to) => `${name(from)} → ${name(to)}`))).toEqual([]);
  });

  it('has no import running back up the pipeline', () => {
    expect(againstTheOrder(graph)).toEqual([]);
  });

  it('has no circle of imports', () => {
    expect(circles(graph)).toEqual([]);
  });

  it('would see an import against the order, and a circle', () => {
    const collection = join(SRC, 'collection/collection.ts');
    const ledger = join(SRC, 'connections/connectionLedger.ts');
    const bad = new Map(graph);
    bad.set(ledger, [...(graph.get(ledger) ?? []), collection]);
    expect(againstTheOrder(bad)).toEqual(['connections/connectionLedger.ts → collection/collection.ts']);
    expect(circles(bad)).toContain('collection/collection.ts → connections/connectionLedger.ts → collection/collection.ts');
  });
});
