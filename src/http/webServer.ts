import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer, Server as HttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { errorMessage } from '../base/errors.js';
import { watchFileChanges } from '../base/fileChanges.js';
import type { Logger } from '../base/log.js';
import { loadWebConfig, secureContextOptions, type WebConfig } from './webConfig.js';

/**
 * The HTTP or HTTPS server the web configuration asks for. Client certificates follow Go's
 * tls.ClientAuthType: Node's handshake enforces "RequireAndVerify"; the two weaker kinds that
 * still refuse some clients are enforced right after the handshake.
 */
export function createWebServer(config: WebConfig, handler: RequestListener): Server {
  const tls = config.tls;
  if (!tls) return createHttpServer(handler);
  const server = createHttpsServer(
    {
      ...secureContextOptions(tls),
      requestCert: tls.clientAuthType !== 'NoClientCert',
      rejectUnauthorized: tls.clientAuthType === 'RequireAndVerifyClientCert',
    },
    handler,
  );
  server.on('secureConnection', (socket: TLSSocket) => {
    const presented = Object.keys(socket.getPeerCertificate()).length > 0;
    const refuse =
      (tls.clientAuthType === 'RequireAnyClientCert' && !presented) ||
      (tls.clientAuthType === 'VerifyClientCertIfGiven' && presented && !socket.authorized);
    if (refuse) socket.destroy();
  });
  return server;
}

/** What a reload can change on a running server; TLS on/off and the client certificate policy need a restart. */
function restartNeededFor(running: WebConfig, next: WebConfig): string | undefined {
  if (Boolean(running.tls) !== Boolean(next.tls)) return 'turning TLS on or off';
  if (running.tls && next.tls && running.tls.clientAuthType !== next.tls.clientAuthType) return 'changing client_auth_type';
  return undefined;
}

export interface WebConfigWatch {
  current(): WebConfig;
  stop(): void;
}

/**
 * Re-reads the web configuration file when it, or a file it names, changes (checked every
 * `intervalMs`, by size, mtime and inode, so an atomic rename or a rotated certificate counts).
 * A new valid file takes effect for new connections; an invalid one is logged and the running
 * settings stay.
 */
export function watchWebConfig(options: {
  path: string;
  initial: WebConfig;
  server: Server;
  log: Logger;
  intervalMs?: number;
}): WebConfigWatch {
  const { path, server, log } = options;
  let config = options.initial;
  const reload = async () => {
    let next: WebConfig;
    try {
      next = await loadWebConfig(path);
    } catch (error) {
      log.error({ file: path }, `web config not reloaded, the running settings stay: ${errorMessage(error)}`);
      return;
    }
    const restart = restartNeededFor(config, next);
    if (restart) {
      log.error({ file: path }, `web config not reloaded, the running settings stay: ${restart} needs a restart`);
      return;
    }
    if (next.tls && server instanceof HttpsServer) server.setSecureContext(secureContextOptions(next.tls));
    config = next;
    log.info({ file: path, tls: Boolean(next.tls), users: next.basicAuthUsers.size }, 'web config reloaded');
  };
  const watch = watchFileChanges({
    files: () => [path, ...(config.tls?.files ?? [])],
    onChange: reload,
    ...(options.intervalMs ? { intervalMs: options.intervalMs } : {}),
  });
  return {
    current: () => config,
    stop: () => {
      watch.stop();
    },
  };
}
