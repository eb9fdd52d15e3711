#!/usr/bin/env node
/**
 * The image's HEALTHCHECK: GET /healthz on the address the exporter listens on, read from the
 * same OUTPOST_* environment (a HEALTHCHECK does not see the exporter's flags). Exit 0 when healthy.
 */
import { parseCommandLine } from './config.js';

const commandLine = parseCommandLine([], process.env);
if (commandLine.kind !== 'run') process.exit(1);
const { host, port } = commandLine.config.listenAddress;
const address = !host || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
fetch(`http://${address}:${port}/healthz`, { signal: AbortSignal.timeout(2_000) }).then(
  (response) => process.exit(response.ok ? 0 : 1),
  () => process.exit(1),
);
