import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { labelRules } from '../../../src/policy/labelRules.js';
import { parsePolicyFile } from '../../../src/policy/policyFile.js';
import { stray } from './policyFixtures.js';

const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
const section = readme.slice(readme.indexOf('## Expected links'), readme.indexOf('## Dashboard and alerts'));
const yamlBlocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);

describe('README "Expected links" examples', () => {
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
    const shown = /```\n(outpost: invalid --policy.file: .*)\n```/.exec(section)![1]!;
    expect(() => parsePolicyFile('rules:\n  - from: {container: web}\n    to: {cidr: 10.0.0.0/99}\n', '/etc/outpost/policy.yaml')).toThrow(
      shown.replace(/^outpost: /, ''),
    );
  });
});
