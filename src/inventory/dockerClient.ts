// Before dockerode: what it would load and outpost does not use.
import './unusedDockerodeModules.js';
import Docker from 'dockerode';

/** Where the Docker API is: a unix socket, or an HTTP(S) endpoint (tcp://host:port). */
export type DockerEndpoint =
  { kind: 'socket'; socketPath: string } | { kind: 'http'; host: string; port: number; protocol: 'http' | 'https' };

/**
 * Parses a DOCKER_HOST-style address; undefined when it is not one.
 * tcp:// is plain HTTP unless DOCKER_TLS_VERIFY asks for TLS, as the docker CLI does.
 */
export function parseDockerHost(value: string, tlsVerify = false): DockerEndpoint | undefined {
  if (value.startsWith('unix://')) {
    const socketPath = value.slice('unix://'.length);
    return socketPath.startsWith('/') ? { kind: 'socket', socketPath } : undefined;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (!['tcp:', 'http:', 'https:'].includes(url.protocol) || !url.hostname) return undefined;
  const protocol = url.protocol === 'https:' || (url.protocol === 'tcp:' && tlsVerify) ? 'https' : 'http';
  const port = url.port ? Number(url.port) : protocol === 'https' ? 2376 : 2375;
  return { kind: 'http', host: url.hostname.replace(/^\[|\]$/g, ''), port, protocol };
}

/**
 * A dockerode client. `timeoutMs` bounds every request; the long-lived event stream gets
 * its own client without one.
 */
export function createDockerClient(endpoint: DockerEndpoint, timeoutMs?: number): Docker {
  const timeout = timeoutMs === undefined ? {} : { timeout: timeoutMs };
  return endpoint.kind === 'socket'
    ? new Docker({ socketPath: endpoint.socketPath, ...timeout })
    : new Docker({ host: endpoint.host, port: endpoint.port, protocol: endpoint.protocol, ...timeout });
}
