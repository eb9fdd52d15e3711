import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A throwaway PKI made by openssl: a CA, a server certificate for 127.0.0.1 and client certificates. */
export interface TestPki {
  dir: string;
  /** File names inside `dir`. */
  files: {
    caCert: string;
    serverCert: string;
    serverKey: string;
    otherServerCert: string;
    otherServerKey: string;
    clientCert: string;
    clientKey: string;
    strangerCert: string;
    strangerKey: string;
  };
  path(name: string): string;
  remove(): void;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function selfSignedCa(dir: string, name: string): void {
  openssl(
    dir,
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
  );
}

function signedBy(dir: string, ca: string, name: string, extensions: string): void {
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(
    dir,
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    `/CN=${name}`,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
  );
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.crt`,
  );
}

export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-pki-'));
  selfSignedCa(dir, 'test-ca');
  selfSignedCa(dir, 'stranger-ca');
  const server = 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n';
  const client = 'extendedKeyUsage=clientAuth\n';
  signedBy(dir, 'test-ca', 'server', server);
  signedBy(dir, 'test-ca', 'server-rotated', server);
  signedBy(dir, 'test-ca', 'client', client);
  signedBy(dir, 'stranger-ca', 'stranger', client);
  return {
    dir,
    files: {
      caCert: 'test-ca.crt',
      serverCert: 'server.crt',
      serverKey: 'server.key',
      otherServerCert: 'server-rotated.crt',
      otherServerKey: 'server-rotated.key',
      clientCert: 'client.crt',
      clientKey: 'client.key',
      strangerCert: 'stranger.crt',
      strangerKey: 'stranger.key',
    },
    path: (name) => join(dir, name),
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
