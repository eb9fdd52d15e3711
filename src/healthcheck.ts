#!/usr/bin/env node
/**
 * The image's HEALTHCHECK: GET /healthz on the address the exporter listens on, read from the
 * same OUTPOST_* environment (a HEALTHCHECK does not see the exporter's flags), over TLS when
 * the web config turns it on. Exit 0 when healthy.
 */
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { parseCommandLine } from './config.js';
import { loadWebConfig, PLAIN_HTTP } from './http/webConfig.js';

const commandLine = parseCommandLine([], process.env);
if (commandLine.kind !== 'run') process.exit(1);
const { listenAddress, webConfigFile } = commandLine.config;
const webConfig = webConfigFile ? await loadWebConfig(webConfigFile).catch(() => process.exit(1)) : PLAIN_HTTP;
const { host, port } = listenAddress;
const address = !host || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
// Liveness of the local process only: the certificate is not checked (it names the host's public name).
const get = webConfig.tls ? httpsGet : httpGet;
get({ host: address, port, path: '/healthz', rejectUnauthorized: false, timeout: 2_000 }, (response) =>
  process.exit(response.statusCode === 200 ? 0 : 1),
)
  .on('timeout', () => process.exit(1))
  .on('error', () => process.exit(1));
