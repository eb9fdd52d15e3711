import { readFile } from 'node:fs/promises';
import { isNode, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { errorMessage, fileAndLine } from './errors.js';

/**
 * A YAML file that is not what its schema asks, said as `file:line: problem` (line 0: the file
 * could not be read, or the problem is the whole file's).
 */
export class YamlFileProblem extends Error {
  readonly file: string;
  readonly line: number;
  readonly problem: string;

  constructor(file: string, line: number, problem: string, cause?: unknown) {
    super(`${fileAndLine(file, line)}: ${problem}`, { cause });
    this.name = 'YamlFileProblem';
    this.file = file;
    this.line = line;
    this.problem = problem;
  }
}

export interface YamlFile<T> {
  data: T;
  /** The line of the node at `path` (1 when it has none). */
  lineOf: (path: readonly (string | number)[]) => number;
}

/** A zod issue's path as the file's author would write it: `rules[0].to`. */
function pathText(path: readonly PropertyKey[]): string {
  return path
    .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
    .join('')
    .replace(/^\./, '');
}

/** How a zod issue reads in a file's error; unknown keys are named. */
function issueText(issue: z.core.$ZodIssue): string {
  const where = issue.path.length > 0 ? `${pathText(issue.path)}: ` : '';
  if (issue.code === 'unrecognized_keys')
    return `${where}unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  if (issue.code === 'invalid_key' && issue.issues[0]) return `${where}${issue.issues[0].message}`;
  return `${where}${issue.message}`;
}

/**
 * YAML text checked against `schema`: keys given twice, aliases to nowhere and what the schema
 * refuses are YamlFileProblems naming the line of the node at fault (the deepest that exists).
 */
export function parseYamlFile<S extends z.ZodType>(text: string, file: string, schema: S): YamlFile<z.output<S>> {
  const lines = new LineCounter();
  const doc: Document = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const lineAt = (offset: number | undefined) => (offset === undefined ? 1 : lines.linePos(offset).line);
  const yamlError = doc.errors[0];
  if (yamlError) throw new YamlFileProblem(file, lineAt(yamlError.pos[0]), `not YAML: ${yamlError.message.split('\n')[0] ?? ''}`);
  let written: unknown;
  try {
    written = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    // An alias to no anchor, or one that expands too far.
    throw new YamlFileProblem(file, 1, `not YAML: ${errorMessage(error)}`, error);
  }
  const lineOf = (path: readonly (string | number)[]) => {
    let node: unknown;
    for (let n = path.length; n >= 0 && !isNode(node); n--) node = doc.getIn(path.slice(0, n), true);
    return lineAt(isNode(node) ? node.range?.[0] : undefined);
  };
  const parsed = schema.safeParse(written);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (!issue) throw new YamlFileProblem(file, 1, 'refused');
    throw new YamlFileProblem(file, lineOf(issue.path as (string | number)[]), issueText(issue));
  }
  return { data: parsed.data, lineOf };
}

/** parseYamlFile of the file at `path`; one that cannot be read is a YamlFileProblem of line 0. */
export async function loadYamlFile<S extends z.ZodType>(path: string, schema: S): Promise<YamlFile<z.output<S>>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new YamlFileProblem(path, 0, `cannot read it: ${errorMessage(error)}`, error);
  }
  return parseYamlFile(text, path, schema);
}
