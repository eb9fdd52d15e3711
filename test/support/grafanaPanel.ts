import { createRequire } from 'node:module';
import type * as GrafanaData from '@grafana/data';
import type { DataFrame, DataTransformerConfig } from '@grafana/data';
import type { PromSample } from './prometheus.js';

/**
 * A dashboard panel's data as Grafana makes it, with Grafana's own code (@grafana/data): the
 * transformations a panel declares are run by the library Grafana runs them with, not by a copy.
 * Its CommonJS build: the ES one imports moment-timezone by a name Node does not give it.
 */
const grafana = createRequire(import.meta.url)('@grafana/data') as typeof GrafanaData;

let registered = false;
/** Grafana registers its transformers at start; the library ships them unregistered. */
function registerTransformers(): void {
  if (registered) return;
  registered = true;
  // One entry per id (some transformers are exported under two names). Deprecated as a public
  // export, it is what Grafana's own registry is made of; the editors an entry also has are UI.
  // eslint-disable-next-line @typescript-eslint/no-deprecated
  const byId = new Map(Object.values(grafana.standardTransformers).map((t) => [t.id, t]));
  grafana.standardTransformersRegistry.setInit(
    () =>
      [...byId.values()].map((t) => ({
        id: t.id,
        name: t.name,
        description: t.description,
        transformation: () => Promise.resolve(t),
      })) as unknown as ReturnType<Parameters<typeof grafana.standardTransformersRegistry.setInit>[0]>,
  );
  // Read by the transformation runner (Grafana's scenes); a browser has it.
  (globalThis as { window?: object }).window ??= {};
}

/**
 * Instant answers, per query refId, as Grafana's Prometheus datasource gives a panel the results
 * of table-format queries (its transformDFToTable): a frame per query, with a Time field, a field
 * per label (in sorted order) and the value, named `Value #<refId>` when the panel has several queries.
 */
export function tableFrames(answers: Record<string, PromSample[]>): DataFrame[] {
  const refIds = Object.keys(answers);
  return refIds.map((refId) => {
    const samples = answers[refId]!;
    const labels = [...new Set(samples.flatMap((s) => Object.keys(s.metric).sort()))];
    return {
      refId,
      length: samples.length,
      meta: { preferredVisualisationType: 'table' },
      fields: [
        { name: 'Time', type: grafana.FieldType.time, config: {}, values: samples.map((s) => (s.value?.[0] ?? 0) * 1000) },
        ...labels.map((label) => ({
          name: label,
          type: grafana.FieldType.string,
          config: { filterable: true },
          values: samples.map((s) => s.metric[label] ?? ''),
        })),
        {
          name: refIds.length > 1 ? `Value #${refId}` : 'Value',
          type: grafana.FieldType.number,
          config: {},
          values: samples.map((s) => Number(s.value?.[1])),
        },
      ],
    };
  });
}

/** The frames the panel's transformations make of `frames`, as Grafana runs them. */
export function transformFrames(transformations: readonly DataTransformerConfig[], frames: DataFrame[]): Promise<DataFrame[]> {
  registerTransformers();
  return new Promise((resolve, reject) => {
    grafana.transformDataFrame([...transformations], frames, { interpolate: (v: string) => v }).subscribe({ next: resolve, error: reject });
  });
}

/** A frame's rows, by field name as the node graph reads them (lowercased; a display name is not a name). */
export function rowsOf(frame: DataFrame): Record<string, unknown>[] {
  return Array.from({ length: frame.length }, (_, row) =>
    Object.fromEntries(frame.fields.map((field) => [field.name.toLowerCase(), field.values[row] as unknown])),
  );
}
