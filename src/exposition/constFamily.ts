/** Label values as the text format writes them (prom-client's escaping, so that the output is the same). */
export function escapeLabelValue(value: string | number): string {
  if (typeof value === 'number') return String(value);
  // Most values have nothing to escape: one test instead of three replaces.
  return NEEDS_ESCAPE.test(value) ? value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"') : value;
}
const NEEDS_ESCAPE = /[\\\n"]/;

/** `{a="1",b="2"}` of `labels`, in their order; '' for none. */
export function formatLabels(labels: Readonly<Record<string, string | number>>): string {
  let text = '';
  for (const [name, value] of Object.entries(labels)) text += `${text ? ',' : ''}${name}="${escapeLabelValue(value)}"`;
  return text ? `{${text}}` : '';
}

/** A sample value as the text format writes it. */
function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'Nan';
  if (!Number.isFinite(value)) return value < 0 ? '-Inf' : '+Inf';
  return String(value);
}

/**
 * A metric family whose series are given whole at each render, as node_exporter builds const
 * metrics: no per-series state or label hashing between scrapes. Written as prom-client writes
 * a family (the golden exposition holds them to it). Series with the same labels are one: a gauge
 * keeps the last value set, a counter the sum.
 */
export class ConstFamily {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  /** The labels its series have, in the order they are written. */
  readonly labelNames: readonly string[];
  /** Written labels → value, in the order first given. */
  #series = new Map<string, number>();

  constructor(options: { name: string; help: string; type: 'counter' | 'gauge'; labelNames?: readonly string[] }) {
    this.name = options.name;
    this.help = options.help;
    this.type = options.type;
    this.labelNames = options.labelNames ?? [];
  }

  /** Drops the series of the last render. */
  reset(): void {
    this.#series = new Map();
  }

  /** One series, its labels as formatLabels wrote them. */
  add(labels: string, value: number): void {
    const before = this.#series.get(labels);
    this.#series.set(labels, this.type === 'counter' && before !== undefined ? before + value : value);
  }

  set(labels: Readonly<Record<string, string | number>>, value: number): void {
    this.add(formatLabels(labels), value);
  }

  /** The family in the text format, each line ended by a newline. */
  writeTo(page: { write(text: string): void }): void {
    // Escaped as prom-client escapes help text.
    page.write(`# HELP ${this.name} ${this.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${this.name} ${this.type}\n`);
    // A family without labels always has its one series, as prom-client's do.
    if (this.#series.size === 0 && this.labelNames.length === 0) page.write(`${this.name} 0\n`);
    for (const [labels, value] of this.#series) page.write(`${this.name}${labels} ${formatValue(value)}\n`);
  }
}
