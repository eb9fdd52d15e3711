import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';

const REQUEST_LINE = /^(GET|POST|PUT|DELETE|HEAD) (\S+) HTTP\/1\.[01]\r$/gm;

/**
 * A pass-through proxy on a unix socket in front of the real Docker API that records the request
 * line of every call made through it ("GET /v1.41/containers/json?…").
 */
export class DockerApiRecorder {
  readonly requests: string[] = [];
  readonly #server = createServer((client) => this.#forward(client));

  private constructor(
    readonly socketPath: string,
    private readonly upstream: string,
  ) {}

  static async start(socketPath: string, upstream = '/var/run/docker.sock'): Promise<DockerApiRecorder> {
    await rm(socketPath, { force: true });
    const recorder = new DockerApiRecorder(socketPath, upstream);
    recorder.#server.listen(socketPath);
    await once(recorder.#server, 'listening');
    return recorder;
  }

  #forward(client: Socket): void {
    const engine = connect(this.upstream);
    client.on('data', (chunk: Buffer) => {
      for (const m of chunk.toString('latin1').matchAll(REQUEST_LINE)) this.requests.push(`${m[1]} ${m[2]}`);
    });
    client.pipe(engine).pipe(client);
    const end = () => {
      client.destroy();
      engine.destroy();
    };
    for (const socket of [client, engine]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  }

  /** Calls of `method` whose path, without the /v1.xx prefix, matches `path`. */
  count(method: string, path: RegExp): number {
    return this.requests.filter((r) => {
      const [m, p] = r.split(' ');
      return m === method && path.test(p!.replace(/^\/v[\d.]+/, ''));
    }).length;
  }

  async close(): Promise<void> {
    this.#server.close();
    await rm(this.socketPath, { force: true });
  }
}
