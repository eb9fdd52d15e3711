import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';

/** The read-only calls outpost makes (docs/deploy-and-security.md "Privileges"); a version prefix (/v1.41) may lead. */
export const OUTPOST_READ_ONLY_API: readonly RegExp[] = [
  /^(GET|HEAD) \/_ping$/,
  /^GET \/version$/,
  /^GET \/containers\/json(\?.*)?$/,
  /^GET \/containers\/[0-9a-f]{64}\/json$/,
  /^GET \/networks(\?.*)?$/,
  /^GET \/events(\?.*)?$/,
];

/**
 * An HTTP proxy on a unix socket in front of the real Docker API, like the socket proxies
 * operators put in front of exporters: it records every call, and with an allowlist answers
 * 403 to anything else instead of passing it on.
 */
export class DockerApiProxy {
  /** Every call, as "METHOD /path?query" without the API version prefix. */
  readonly requests: string[] = [];
  readonly denied: string[] = [];
  /** Calls matching a pattern here are answered this many ms late: a slow Docker daemon. */
  readonly delays = new Map<RegExp, number>();
  /** Calls matching a pattern here get this body with status 200 instead of the engine's answer. */
  readonly malformed = new Map<RegExp, string>();
  readonly #eventStreams = new Set<ServerResponse>();
  readonly #server = createServer((req, res) => {
    void this.#answer(req, res);
  });

  private constructor(
    readonly socketPath: string,
    private readonly upstream: string,
    private readonly allow: readonly RegExp[] | undefined,
  ) {}

  async #answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const call = `${req.method} ${(req.url ?? '').replace(/^\/v[\d.]+\//, '/')}`;
    this.requests.push(call);
    for (const [pattern, ms] of this.delays) if (pattern.test(call)) await new Promise((r) => setTimeout(r, ms));
    for (const [pattern, body] of this.malformed) {
      if (pattern.test(call)) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
        return;
      }
    }
    if (call.startsWith('GET /events')) {
      this.#eventStreams.add(res);
      res.on('close', () => this.#eventStreams.delete(res));
    }
    if (this.allow && !this.allow.some((rule) => rule.test(call))) {
      this.denied.push(call);
      res.writeHead(403, { 'content-type': 'application/json' }).end('{"message":"denied by the test socket proxy"}\n');
      return;
    }
    const upstream = request({ socketPath: this.upstream, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      res.flushHeaders(); // an event stream sends no body until an event happens
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy()); // an event stream ends with its client
    req.pipe(upstream);
  }

  static async start(socketPath: string, options: { upstream?: string; allow?: readonly RegExp[] } = {}): Promise<DockerApiProxy> {
    await rm(socketPath, { force: true });
    const proxy = new DockerApiProxy(socketPath, options.upstream ?? '/var/run/docker.sock', options.allow);
    proxy.#server.listen(socketPath);
    await once(proxy.#server, 'listening');
    return proxy;
  }

  /** Cuts every open event stream, as a daemon restart or a broken connection would. */
  cutEventStreams(): number {
    const cut = this.#eventStreams.size;
    for (const res of this.#eventStreams) res.destroy();
    return cut;
  }

  /** Calls whose "METHOD /path" matches. */
  count(pattern: RegExp): number {
    return this.requests.filter((r) => pattern.test(r)).length;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    this.#server.close();
    await rm(this.socketPath, { force: true });
  }
}
