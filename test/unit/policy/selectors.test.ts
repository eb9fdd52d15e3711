import { describe, expect, it } from 'vitest';
import type { Container } from '../../../src/inventory/container.js';
import { matchesEndpoint, type Selector } from '../../../src/policy/selectors.js';
import { web } from './policyFixtures.js';

const as = (over: Partial<Container>): Container => ({ ...web, ...over });
const matches = (selector: Selector, container: Container) => matchesEndpoint(selector, { container, host: false });

describe('globs of container and image selectors', () => {
  it.each([
    [{ image: 'registry.local:5000/shop/*' }, as({ image: 'registry.local:5000/shop/web:1.2' }), true],
    [{ image: '*/web:*' }, as({ image: 'registry.local:5000/shop/web:1.2' }), true],
    [{ image: 'shop/*' }, as({ image: 'other/shop/web' }), false],
    [{ image: 'redis:7.?' }, as({ image: 'redis:7.2' }), true],
    [{ image: 'redis:7.?' }, as({ image: 'redis:7.22' }), false],
    [{ container: 'pay-*' }, as({ name: 'pay-api-1' }), true],
    [{ container: 'pay-*' }, as({ name: 'payments' }), false],
    [{ container: 'web.1' }, as({ name: 'webx1' }), false],
    [{ container: 'db-{main,replica}' }, as({ name: 'db-replica' }), true],
    [{ container: 'db-[0-9]' }, as({ name: 'db-7' }), true],
    [{ container: 'db-[0-9]' }, as({ name: 'db-x' }), false],
  ] as const)('%j on %s: %s', (selector, container, expected) => {
    expect(matches(selector, container)).toBe(expected);
  });
});

describe('domain selectors', () => {
  const peer = (names?: string[]) => ({ host: false, address: '192.0.2.7', ...(names ? { names } : {}) });
  it.each([
    ['api.example.com', ['api.example.com'], true],
    ['api.example.com', ['www.api.example.com'], false],
    ['*.example.com', ['api.example.com'], true],
    ['*.example.com', ['a.b.example.com'], true],
    // The name itself is not under it, nor a name that only ends the same.
    ['*.example.com', ['example.com'], false],
    ['*.example.com', ['badexample.com'], false],
    ['api.example.com', ['other.test', 'api.example.com'], true],
  ] as const)('%s on an address resolved from %j: %s', (domain, names, expected) => {
    expect(matchesEndpoint({ domain }, peer([...names]))).toBe(expected);
  });

  it('matches no address the container did not resolve: one dialed without a lookup is judged by address only', () => {
    expect(matchesEndpoint({ domain: 'api.example.com' }, peer())).toBe(false);
    expect(matchesEndpoint({ cidr: '192.0.2.0/24' }, peer())).toBe(true);
  });
});
