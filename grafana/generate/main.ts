import { writeFileSync } from 'node:fs';
import { dashboardJson } from './dashboard.js';
import { rulesYaml } from './rules.js';

/** Writes the generated rules and dashboard into grafana/; `npm run grafana` runs it from build/grafana/. */
const root = new URL('../../grafana/', import.meta.url);
const outputs: [string, string][] = [
  ['rules/outpost.rules.yaml', rulesYaml()],
  ['dashboards/outpost.json', dashboardJson()],
];
for (const [path, text] of outputs) {
  writeFileSync(new URL(path, root), text);
  process.stdout.write(`wrote grafana/${path}\n`);
}
