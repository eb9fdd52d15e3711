import { describe, expect, it } from 'vitest';
import { PageWriter } from '../../../src/exposition/pageWriter.js';

describe('PageWriter', () => {
  it('gives the UTF-8 of what was written, however it grows past its capacity and whatever the characters', () => {
    const lines = Array.from({ length: 40_000 }, (_, i) => `x{container="caf\u00e9-${i}",image="\u20ac/\u{1d11e}"} ${i}\n`);
    const page = new PageWriter(1024);
    for (const line of lines) page.write(line);
    const bytes = page.bytes();
    expect(bytes.equals(Buffer.from(lines.join(''), 'utf8'))).toBe(true);
    expect(bytes.length).toBeGreaterThan(1024);
  });

  it('gives an empty page when nothing was written', () => {
    expect(new PageWriter().bytes().length).toBe(0);
  });
});
