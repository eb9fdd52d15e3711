/** A small reader of the Prometheus text format, for asserting on a live /metrics answer. */
export interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function unescape(value: string): string {
  return value.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

export function parseExposition(text: string): Series[] {
  const series: Series[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.lastIndexOf(' ');
    const name = brace >= 0 && brace < space ? line.slice(0, brace) : line.slice(0, space);
    const labels: Record<string, string> = {};
    if (brace >= 0 && brace < space) {
      const body = line.slice(brace + 1, line.lastIndexOf('}'));
      for (const m of body.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = unescape(m[2]!);
    }
    series.push({ name, labels, value: Number(line.slice(space + 1)) });
  }
  return series;
}

/** Series of `name` whose labels include all of `match`. */
export function select(all: readonly Series[], name: string, match: Record<string, string> = {}): Series[] {
  return all.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/** One line per series, labels in a fixed order, for exact comparisons. */
export function describeSeries(series: readonly Series[], labelNames: readonly string[]): string[] {
  return series.map((s) => `${labelNames.map((l) => `${l}=${s.labels[l] ?? ''}`).join(' ')} => ${s.value}`).sort();
}
