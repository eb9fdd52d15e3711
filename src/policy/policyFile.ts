import { readFile } from 'node:fs/promises';
import { isNode, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { errorMessage, InvalidPolicyFileError } from '../base/errors.js';
import { parsePortSpan, type PolicyRule, type PortSpan } from './policyRules.js';
import { parseCidr } from '../net/ipAddress.js';
import { selectsContainers, type Selector } from './selectors.js';

const text = z.string().min(1, 'expected a non-empty string');

const selectorObject = z
  .strictObject({
    container: text.optional(),
    image: text.optional(),
    project: text.optional(),
    service: text.optional(),
    label: text.optional(),
    network: text.optional(),
    cidr: text.refine((v) => parseCidr(v) !== undefined, 'expected an IP address or a CIDR such as 10.0.0.0/8').optional(),
    host: z.literal(true).optional(),
  })
  .refine((s) => Object.keys(s).length > 0, 'expected at least one of container, image, project, service, label, network, cidr, host');

/** The message of a value that is missing, or not what `expected` says. */
const expecting = (expected: string) => (issue: { input?: unknown }) =>
  issue.input === undefined ? 'missing; it is required' : `expected ${expected}`;

const SELECTOR = '"*", "host", or a mapping of container, image, project, service, label, network, cidr, host';
/** A selector: `*`, `host`, or a mapping whose fields must all match. */
const selector = z.union([z.literal('*'), z.literal('host'), selectorObject], { error: expecting(SELECTOR) });
const selectors = z.union([selector, z.array(selector).min(1, 'expected at least one selector')], {
  error: expecting(`${SELECTOR}, or a list of them`),
});

const port = z.union([z.number(), z.string()]).transform((value, ctx): PortSpan => {
  const span = parsePortSpan(String(value));
  if (typeof span === 'string') {
    ctx.addIssue({ code: 'custom', message: span });
    return z.NEVER;
  }
  return span;
});

const ruleSchema = z.strictObject({
  name: text.optional(),
  from: selectors,
  to: selectors,
  ports: z.array(port).min(1, 'expected at least one port; leave ports out for every port').optional(),
});

const fileSchema = z.strictObject(
  { rules: z.array(ruleSchema, { error: expecting('a list of rules') }).nullish() },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? undefined : 'expected a mapping with a list "rules"') },
);

type WrittenSelector = z.infer<typeof selector>;

function toSelector(s: WrittenSelector): Selector {
  if (s === '*') return { any: true };
  if (s === 'host') return { host: true };
  const { host, ...rest } = s;
  return { ...rest, ...(host ? { host: true as const } : {}) };
}

const asList = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

/**
 * Parses a policy file (YAML, see README "Expected links") into its rules. Throws only
 * InvalidPolicyFileError, naming the line and the problem.
 */
export function parsePolicyFile(source: string, file: string): PolicyRule[] {
  const lines = new LineCounter();
  let doc;
  try {
    doc = parseDocument(source, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  } catch (error) {
    throw new InvalidPolicyFileError(file, 0, `not YAML: ${errorMessage(error)}`, error);
  }
  const lineAt = (offset: number | undefined) => (offset === undefined ? 1 : lines.linePos(offset).line);
  const yamlError = doc.errors[0];
  if (yamlError) throw new InvalidPolicyFileError(file, lineAt(yamlError.pos[0]), `not YAML: ${yamlError.message.split('\n')[0]}`);

  let written: unknown;
  try {
    written = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    // An alias to no anchor, or one that expands too far.
    throw new InvalidPolicyFileError(file, 1, `not YAML: ${errorMessage(error)}`, error);
  }
  const parsed = fileSchema.safeParse(written ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    // The deepest node of the path that exists carries the line.
    let node: unknown;
    for (let n = issue.path.length; n >= 0 && !isNode(node); n--) node = doc.getIn(issue.path.slice(0, n) as (string | number)[], true);
    const where = issue.path.length
      ? `${issue.path
          .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
          .join('')
          .replace(/^\./, '')}: `
      : '';
    throw new InvalidPolicyFileError(file, lineAt(isNode(node) ? node.range?.[0] : undefined), `${where}${issue.message}`);
  }

  return (parsed.data.rules ?? []).map((rule, i) => {
    const node = doc.getIn(['rules', i], true);
    const line = lineAt(isNode(node) ? node.range?.[0] : undefined);
    const from = asList(rule.from).map(toSelector);
    const to = asList(rule.to).map(toSelector);
    return {
      id: `file:${line}`,
      source: 'file' as const,
      origin: `${file}:${line}`,
      ...(rule.name ? { name: rule.name } : {}),
      from,
      to,
      ...(rule.ports ? { ports: rule.ports } : {}),
      covers: { from: from.some(selectsContainers), to: to.some(selectsContainers) },
    };
  });
}

/** Reads and parses a policy file; throws InvalidPolicyFileError. */
export async function loadPolicyFile(file: string): Promise<PolicyRule[]> {
  let source: string;
  try {
    source = await readFile(file, 'utf8');
  } catch (error) {
    throw new InvalidPolicyFileError(file, 0, `cannot read it: ${errorMessage(error)}`, error);
  }
  return parsePolicyFile(source, file);
}
