import { Counter, Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ConstFamily } from '../../../src/exposition/constFamily.js';
import { PageWriter } from '../../../src/exposition/pageWriter.js';

/** The family as the exposition writes it. */
function text(family: ConstFamily): string {
  const page = new PageWriter();
  family.writeTo(page);
  return page.bytes().toString();
}

const HELP = 'Links; "help" \\ kept\nas prom-client writes it.';
const labels = [
  { container: 'api', image: 'shop/api:1', port: 8080 },
  { container: 'quote"back\\slash', image: 'line\nbreak', port: '*' },
  { container: 'api', image: 'shop/api:1', port: 8080 },
];

describe('ConstFamily', () => {
  it('writes a gauge as prom-client does, hostile label values included; the same labels twice are one series, the last value', async () => {
    const theirs = new Registry();
    const gauge = new Gauge({ name: 'x_links', help: HELP, labelNames: ['container', 'image', 'port'], registers: [theirs] });
    const ours = new ConstFamily({ name: 'x_links', help: HELP, type: 'gauge', labelNames: ['container', 'image', 'port'] });
    labels.forEach((l, i) => {
      gauge.set(l, i + 0.5);
      ours.set(l, i + 0.5);
    });
    expect(text(ours)).toBe(await theirs.metrics());
    expect(text(ours).split('\n')).toHaveLength(5);
  });

  it('writes a counter as prom-client does: the same labels twice are summed', async () => {
    const theirs = new Registry();
    const counter = new Counter({ name: 'x_total', help: HELP, labelNames: ['container', 'image', 'port'], registers: [theirs] });
    const ours = new ConstFamily({ name: 'x_total', help: HELP, type: 'counter', labelNames: ['container', 'image', 'port'] });
    labels.forEach((l, i) => {
      counter.inc(l, i + 1);
      ours.set(l, i + 1);
    });
    expect(text(ours)).toBe(await theirs.metrics());
  });

  it('writes a family without labels with its one series, 0 before any is set; one with labels and none set as its header', async () => {
    const theirs = new Registry();
    new Counter({ name: 'x_errors_total', help: 'Errors.', registers: [theirs] });
    const ours = new ConstFamily({ name: 'x_errors_total', help: 'Errors.', type: 'counter' });
    expect(text(ours)).toBe(await theirs.metrics());
    const labelled = new ConstFamily({ name: 'x_up', help: 'Up.', type: 'gauge', labelNames: ['a'] });
    labelled.set({ a: '1' }, 1);
    labelled.reset();
    expect(text(labelled)).toBe('# HELP x_up Up.\n# TYPE x_up gauge\n');
  });
});
