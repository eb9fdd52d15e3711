import { isIPv6 } from 'node:net';
import { describe, expect, it } from 'vitest';
import { formatIPv6 } from '../../../src/net/ipAddress.js';

const bytes = (hex: string) => Uint8Array.from(Buffer.from(hex, 'hex'));

describe('formatIPv6', () => {
  it.each([
    ['00000000000000000000000000000000', '::'],
    ['00000000000000000000000000000001', '::1'],
    ['fd000213000700000000000000000002', 'fd00:213:7::2'],
    ['20010db8000000010000000000000001', '2001:db8:0:1::1'],
    ['20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
    ['20010db8000100010001000100010001', '2001:db8:1:1:1:1:1:1'],
    ['fe800000000000000000000000000001', 'fe80::1'],
    ['00000000000000000000ffff0a0d0802', '10.13.8.2'],
  ])('formats %s as %s (RFC 5952)', (hex, text) => {
    expect(formatIPv6(bytes(hex))).toBe(text);
  });

  it('produces text node:net accepts for every single-bit address', () => {
    for (let bit = 0; bit < 128; bit++) {
      const b = new Uint8Array(16);
      b[bit >> 3] = 0x80 >> (bit & 7);
      const text = formatIPv6(b);
      expect(isIPv6(text) || /^\d+\.\d+\.\d+\.\d+$/.test(text)).toBe(true);
    }
  });
});
