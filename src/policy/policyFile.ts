import { z } from 'zod';
import { InvalidPolicyFileError } from '../base/errors.js';
import { loadYamlFile, parseYamlFile, YamlFileProblem, type YamlFile } from '../base/yamlFile.js';
import { parsePortSpan, type PolicyRule, type PortSpan } from './policyRules.js';
import { parseCidr } from '../net/ipAddress.js';
import { isDomainPattern, selectsContainers, type Selector } from './selectors.js';

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
    domain: text
      .refine(isDomainPattern, 'expected a DNS name such as api.example.com, or *.example.com for every name under it')
      .transform((d) => d.toLowerCase())
      .optional(),
    host: z.literal(true).optional(),
  })
  .refine(
    (s) => Object.keys(s).length > 0,
    'expected at least one of container, image, project, service, label, network, cidr, domain, host',
  );

/** The message of a value that is missing, or not what `expected` says. */
const expecting = (expected: string) => (issue: { input?: unknown }) =>
  issue.input === undefined ? 'missing; it is required' : `expected ${expected}`;

const SELECTOR = '"*", "host", or a mapping of container, image, project, service, label, network, cidr, domain, host';
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

// An empty file is a policy of no rules.
const fileSchema = z
  .strictObject(
    { rules: z.array(ruleSchema, { error: expecting('a list of rules') }).nullish() },
    { error: (issue) => (issue.code === 'unrecognized_keys' ? undefined : 'expected a mapping with a list "rules"') },
  )
  .nullish();

type WrittenSelector = z.infer<typeof selector>;

function toSelector(s: WrittenSelector): Selector {
  if (s === '*') return { any: true };
  if (s === 'host') return { host: true };
  const { host, ...rest } = s;
  return { ...rest, ...(host ? { host: true as const } : {}) };
}

const asList = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

/** A problem of the file as the policy's error (file:line: problem); anything else as it is. */
function policyError(error: unknown): unknown {
  return error instanceof YamlFileProblem ? new InvalidPolicyFileError(error.file, error.line, error.problem, error.cause) : error;
}

/** The file's rules, each with the line it starts at. */
function rulesOf({ data, lineOf }: YamlFile<z.output<typeof fileSchema>>, file: string): PolicyRule[] {
  return (data?.rules ?? []).map((rule, i) => {
    const line = lineOf(['rules', i]);
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

/**
 * Parses a policy file (YAML, see docs/policy.md) into its rules. Throws only
 * InvalidPolicyFileError, naming the line and the problem.
 */
export function parsePolicyFile(source: string, file: string): PolicyRule[] {
  try {
    return rulesOf(parseYamlFile(source, file, fileSchema), file);
  } catch (error) {
    throw policyError(error);
  }
}

/** Reads and parses a policy file; throws InvalidPolicyFileError. */
export async function loadPolicyFile(file: string): Promise<PolicyRule[]> {
  try {
    return rulesOf(await loadYamlFile(file, fileSchema), file);
  } catch (error) {
    throw policyError(error);
  }
}
