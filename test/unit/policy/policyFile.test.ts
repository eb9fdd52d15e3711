import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { InvalidPolicyFileError } from '../../../src/base/errors.js';
import { parsePolicyFile } from '../../../src/policy/policyFile.js';

const EXAMPLE = `# the README's example
rules:
  - name: web calls the api
    from: {project: shop, service: web}
    to: {project: shop, service: api}
    ports: [8080]
  - from:
      - {image: "shop/*"}
      - {label: "team=payments", network: backend}
    to: [{cidr: 10.20.0.0/16}, host]
    ports: [5432, "9000-9100"]
  - from: "*"
    to: {container: "dns-?"}
`;

describe('parsePolicyFile', () => {
  it("reads the README's example: selectors, lists of them, ports and ranges, lines", () => {
    const rules = parsePolicyFile(EXAMPLE, 'policy.yaml');
    expect(rules.map((r) => [r.id, r.origin, r.name])).toEqual([
      ['file:3', 'policy.yaml:3', 'web calls the api'],
      ['file:7', 'policy.yaml:7', undefined],
      ['file:12', 'policy.yaml:12', undefined],
    ]);
    expect(rules[1]).toMatchObject({
      from: [{ image: 'shop/*' }, { label: 'team=payments', network: 'backend' }],
      to: [{ cidr: '10.20.0.0/16' }, { host: true }],
      ports: [
        { from: 5432, to: 5432 },
        { from: 9000, to: 9100 },
      ],
      // The from side names containers, the to side only an address and the host.
      covers: { from: true, to: false },
    });
    expect(rules[2]).toMatchObject({ from: [{ any: true }], to: [{ container: 'dns-?' }], covers: { from: true, to: true } });
    expect(rules[2]!.ports).toBeUndefined();
  });

  it('reads a rule by DNS name, lower case, and names a pattern it cannot take', () => {
    const [rule] = parsePolicyFile(
      'rules:\n  - from: {service: api}\n    to: [{domain: Payments.Example.com}, {domain: "*.s3.example.net"}]\n    ports: [443]\n',
      'p.yaml',
    );
    expect(rule).toMatchObject({
      to: [{ domain: 'payments.example.com' }, { domain: '*.s3.example.net' }],
      covers: { from: true, to: false },
    });
    expect(() => parsePolicyFile('rules:\n  - from: "*"\n    to: {domain: "a.*.example.net"}\n', 'p.yaml')).toThrow(
      /p\.yaml:3: rules\[0\]\.to\.domain: expected a DNS name such as api\.example\.com, or \*\.example\.com/,
    );
  });

  it('takes an empty file or an empty list as no rules', () => {
    expect(parsePolicyFile('', 'p.yaml')).toEqual([]);
    expect(parsePolicyFile('rules:\n', 'p.yaml')).toEqual([]);
    expect(parsePolicyFile('rules: []\n', 'p.yaml')).toEqual([]);
  });

  it.each([
    ['rules:\n  - from: web\n    to: host\n', 2, 'rules[0].from: expected "*", "host", or a mapping'],
    ['rules:\n  - from: {container: web, port: 80}\n    to: host\n', 2, 'rules[0].from: unknown key "port"'],
    ['rules:\n  - from: "*"\n    to: host\n    ports: [80, 70000]\n', 4, 'rules[0].ports[1]: "70000" is not a port'],
    ['rules:\n  - from: "*"\n', 2, 'rules[0].to: missing; it is required'],
    ['rules:\n  - from: "*"\n    to: {cidr: 10.0.0.0/33}\n', 3, 'rules[0].to.cidr: expected an IP address or a CIDR'],
    ['rules:\n  - from: []\n    to: host\n', 2, 'rules[0].from: expected at least one selector'],
    ['rules:\n  - from: "*"\n    to: {}\n', 3, 'rules[0].to: expected at least one of container, image'],
    ['rule:\n  - from: "*"\n', 1, 'unknown key "rule"'],
    ['rules:\n  - from: *nothing\n    to: host\n', 1, 'not YAML: Unresolved alias'],
    ['rules:\n  - from: "*"\n    from: host\n    to: host\n', 3, 'not YAML: Map keys must be unique'],
    ['rules:\n  - from: [a,\n', 3, 'not YAML'],
    ['- from: "*"\n', 1, 'expected a mapping with a list "rules"'],
  ])('refuses %j at line %i: %s', (text, line, problem) => {
    let error: unknown;
    try {
      parsePolicyFile(text, 'p.yaml');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidPolicyFileError);
    expect((error as InvalidPolicyFileError).line).toBe(line);
    expect((error as InvalidPolicyFileError).message).toContain(`invalid --policy.file: p.yaml:${line}: ${problem}`);
  });

  it('never throws anything but a named error with a line, on any text (fuzzed)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        try {
          parsePolicyFile(text, 'p.yaml');
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidPolicyFileError);
          expect((error as InvalidPolicyFileError).line).toBeGreaterThan(0);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('never throws anything but a named error on any YAML value in a rule (fuzzed)', () => {
    const value = fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.integer(),
      fc.constantFrom('*', 'host', '10.0.0.0/8', '[::1]', '80-90', null, true),
      fc.array(fc.oneof(fc.string({ maxLength: 10 }), fc.integer()), { maxLength: 3 }),
      fc.dictionary(
        fc.constantFrom('container', 'image', 'project', 'service', 'label', 'network', 'cidr', 'host', 'other'),
        fc.oneof(fc.string({ maxLength: 12 }), fc.integer(), fc.boolean()),
      ),
    );
    const rule = fc.dictionary(fc.constantFrom('name', 'from', 'to', 'ports', 'x'), value);
    fc.assert(
      fc.property(fc.array(rule, { maxLength: 3 }), (rules) => {
        try {
          const parsed = parsePolicyFile(stringify({ rules }), 'p.yaml');
          expect(parsed).toHaveLength(rules.length);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidPolicyFileError);
          expect((error as InvalidPolicyFileError).line).toBeGreaterThan(0);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
