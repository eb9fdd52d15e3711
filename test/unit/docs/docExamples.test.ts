import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { FLAGS } from '../../../src/config.js';
import { labelRules } from '../../../src/policy/labelRules.js';
import { parsePolicyFile } from '../../../src/policy/policyFile.js';
import { stray } from '../policy/policyFixtures.js';

/** The README and docs/: what they show must be what outpost does. */
const REPO = resolve(import.meta.dirname, '../../..');
const read = (path: string) => readFileSync(join(REPO, path), 'utf8');
const PAGES = ['README.md', ...readdirSync(join(REPO, 'docs')).flatMap((f) => (f.endsWith('.md') ? [`docs/${f}`] : []))];
const readme = read('README.md');

/** GitHub's anchor of a heading. */
const anchorOf = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\- _]/gu, '')
    .replace(/ /g, '-');
const anchorsOf = (text: string) => new Set([...text.matchAll(/^#+ (.+)$/gm)].map((m) => anchorOf(m[1]!)));
/** Fenced code is not prose: links and flags in it are examples of other tools too. */
const prose = (text: string) => text.replace(/```[\s\S]*?```/g, '');

describe('the README', () => {
  it('is a front door: at most 250 lines', () => {
    expect(readme.split('\n').length).toBeLessThanOrEqual(250);
  });

  it('shows a sample of /metrics that the golden exposition holds', () => {
    const golden = new Set(read('test/unit/exposition/fixtures/collection.prom').split('\n'));
    const sample = readme.split('\n').filter((l) => /^container_tcp_\w+\{/.test(l));
    expect(sample.length).toBeGreaterThanOrEqual(3);
    for (const line of sample) expect(golden.has(line), line).toBe(true);
  });

  it('lists every flag in its table, with its variable', () => {
    for (const { flag } of FLAGS) expect(readme, flag).toMatch(new RegExp(`\\| \`--${flag.replace(/\./g, '\\.')}\` \\| \`OUTPOST_`));
  });
});

describe.each(PAGES)('%s', (page) => {
  const text = read(page);

  it('names only flags outpost has', () => {
    const known = new Set(FLAGS.map((f) => f.flag));
    // outpost's flags all have a dot (web.listen-address); docker's, npm's and the bench's have none.
    const named = [...text.matchAll(/--([a-z]+(?:\.[a-z0-9-]+)+)/g)].map((m) => m[1]!);
    expect(named.filter((f) => !known.has(f))).toEqual([]);
  });

  it('links only to files and headings that exist', () => {
    const broken: string[] = [];
    for (const [, target] of prose(text).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^(https?:|mailto:)/.test(target!)) continue;
      const [path, anchor] = target!.split('#');
      const file = path ? resolve(dirname(join(REPO, page)), path) : join(REPO, page);
      if (!existsSync(file)) broken.push(`${target} (no ${relative(REPO, file)})`);
      else if (anchor && file.endsWith('.md') && !anchorsOf(readFileSync(file, 'utf8')).has(anchor)) broken.push(`${target} (no heading)`);
    }
    expect(broken).toEqual([]);
  });
});

describe('docs/policy.md examples', () => {
  const policy = read('docs/policy.md');
  const yamlBlocks = [...policy.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);

  it('has a compose example whose labels all parse', () => {
    const compose = parse(yamlBlocks[0]!) as { services: Record<string, { labels: Record<string, string> }> };
    const services = Object.entries(compose.services);
    expect(services.length).toBe(3);
    for (const [service, { labels }] of services) {
      const { rules, errors } = labelRules({ ...stray, name: service, composeProject: 'shop', composeService: service, labels });
      expect(errors).toEqual([]);
      expect(rules.length).toBeGreaterThan(0);
    }
  });

  it('has a policy file example that parses, and the start error it shows is the real one', () => {
    expect(parsePolicyFile(yamlBlocks[1]!, 'policy.yaml')).toHaveLength(3);
    const shown = /```\n(outpost: invalid --policy.file: .*)\n```/.exec(policy)![1]!;
    expect(() => parsePolicyFile('rules:\n  - from: {container: web}\n    to: {cidr: 10.0.0.0/99}\n', '/etc/outpost/policy.yaml')).toThrow(
      shown.replace(/^outpost: /, ''),
    );
  });
});
